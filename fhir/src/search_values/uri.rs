//! uri
pub fn uri_prefixes(){}
