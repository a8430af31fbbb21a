//! Interoperability tests against DCMTK on loopback: our SCP with echoscu/storescu, our SCU
//! with storescp (including its fault flags), rejects, malformed input and shutdown.

mod common;
mod echo;
mod malformed;
mod reject;
mod scu;
mod store;
