//! number
pub struct NumberRange; pub struct QuantityParam; pub fn number_matches(){} pub fn parse_number_param(){} pub fn parse_quantity_param(){}
