//! Fever screening: a face's temperature from the thermal frame ([`fusion`]), a decision from
//! several readings ([`decision`]), and the stage that holds a track until it is decided ([`stage`]).

pub mod decision;
pub mod fusion;
pub mod stage;

pub use decision::{Decision, FeverConfig, NotMeasured, Reading, Screening};
pub use stage::ScreeningStage;
