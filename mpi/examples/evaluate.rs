//! Prints the evaluation report of the default configuration on the
//! generator's standard setting: `cargo run --release -p mpi --example evaluate`
//! (`-- small` for the small setting).

use mpi::evaluate;
use mpi::generator::Setting;

fn main() {
    let setting = match std::env::args().nth(1).as_deref() {
        Some("small") => Setting::small(),
        _ => Setting::standard(),
    };
    println!("{}", evaluate::report(&setting));
}
