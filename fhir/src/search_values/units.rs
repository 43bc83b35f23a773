//! units
pub const UCUM: &str = "http://unitsofmeasure.org"; pub fn canonical_quantity(){}
