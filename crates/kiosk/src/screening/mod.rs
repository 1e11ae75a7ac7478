//! Fever screening: a face's temperature from the thermal frame ([`fusion`]), a decision from
//! several readings ([`decision`]), judged against the door's population ([`reference`]), and the stage that holds a track until it is decided ([`stage`]).

pub mod decision;
pub mod fusion;
pub mod reference;
pub mod stage;

pub use decision::{Decision, FeverConfig, NotMeasured, Reading, Screening, Site};
pub use reference::PopulationReference;
pub use stage::ScreeningStage;
