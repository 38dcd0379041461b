//! Errors of the async operations. Tree operations (insert, set_limit) return the core's own
//! per-operation enums ([`InsertError`](throttle_core::InsertError),
//! [`SetLimitError`](throttle_core::SetLimitError)); waiting is never an error, except when the
//! caller asked not to wait ([`TryAcquireError`], from [`Leaf::try_acquire`](crate::Leaf::try_acquire))
//! or not past a deadline ([`AcquireError::Deadline`], from
//! [`Leaf::acquire_before`](crate::Leaf::acquire_before)), or when the runtime cannot arm a
//! timer ([`AcquireError::Runtime`]).
//!
//! Both are the core's request vocabulary ([`throttle_core::request`]), the same types every
//! adapter (embassy's too) returns; `AcquireError` converts into `std::io::Error`.

pub use throttle_core::request::{AcquireError, TryAcquireError};
