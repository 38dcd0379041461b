//! One small error enum per operation. Every error leaves the tree exactly as it was.
//!
//! "Rate-limited" is never an error: it is a [`Decision`](crate::Decision).

use core::fmt;

macro_rules! error_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $msg:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $variant,)*
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $($name::$variant => $msg,)*
                })
            }
        }

        impl core::error::Error for $name {}
    };
}

/// A tier whose burst is below the minimum the tree's [`Config`](crate::Config) accepts
/// ([`Config::min_burst`](crate::Config::min_burst) of its rate).
///
/// Why a minimum: a node can only send while it holds tokens, and it holds at most its burst.
/// Between two of its turns — timers that fire on a 1 ms grid, a task that runs a little late,
/// siblings served first — its bucket fills up and overflows, so a burst smaller than a few
/// milliseconds of its rate loses most of its share (a 20 MiB/s node with a 1 KiB burst got
/// 3.4 MiB/s beside busy siblings). Raise the burst to at least `minimum`, or lower
/// `Config::min_burst` knowingly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BurstTooSmall {
    /// Index of the tier in its [`Limits`](crate::Limits).
    pub tier: usize,
    /// The burst it has, in tokens.
    pub burst: u64,
    /// The smallest burst accepted for its rate, in tokens.
    pub minimum: u64,
    /// The configuration's minimum, as time at the tier's rate.
    pub min_burst: core::time::Duration,
}

impl fmt::Display for BurstTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tier {}: a burst of {} tokens is below the minimum of {} ({:?} at its rate): \
             such a node loses most of its rate when timers fire late or siblings compete",
            self.tier, self.burst, self.minimum, self.min_burst
        )
    }
}

impl core::error::Error for BurstTooSmall {}

/// Why [`Tree::insert_node`](crate::Tree::insert_node) or
/// [`Tree::insert_leaf`](crate::Tree::insert_leaf) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InsertError {
    /// The storage is full (fixed capacity) or holds `u32::MAX - 1` nodes.
    CapacityFull,
    /// The parent handle refers to a removed node.
    StaleParent,
    /// Leaves cannot have children.
    ParentIsLeaf,
    /// Weights start at 1.
    ZeroWeight,
    /// A tier's burst is below the configured minimum.
    BurstTooSmall(BurstTooSmall),
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InsertError::CapacityFull => "the tree's storage is full",
            InsertError::StaleParent => "the parent node no longer exists",
            InsertError::ParentIsLeaf => "a leaf cannot be a parent",
            InsertError::ZeroWeight => "a node's weight must be at least 1",
            InsertError::BurstTooSmall(e) => return e.fmt(f),
        })
    }
}

impl core::error::Error for InsertError {}

error_enum! {
    /// Why [`Tree::acquire`](crate::Tree::acquire) failed.
    AcquireError {
        /// The leaf was removed.
        StaleHandle => "the leaf no longer exists",
        /// A request must ask for at least one token.
        ZeroRequest => "a request must ask for at least one token",
    }
}

error_enum! {
    /// Why [`Tree::settle`](crate::Tree::settle) failed.
    SettleError {
        /// The leaf was removed.
        StaleHandle => "the leaf no longer exists",
        /// No grant is held: nothing was granted since the last settle or cancel.
        NoGrant => "the leaf holds no grant to settle",
        /// `used` was larger than the grant; nothing was changed.
        UsedMoreThanGranted => "more tokens were reported used than were granted",
    }
}

error_enum! {
    /// Why [`Tree::cancel`](crate::Tree::cancel) failed.
    CancelError {
        /// The leaf was removed (its reservation was refunded then).
        StaleHandle => "the leaf no longer exists",
    }
}

/// Why [`Tree::set_limit`](crate::Tree::set_limit) or
/// [`Tree::set_weight`](crate::Tree::set_weight) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetLimitError {
    /// The node was removed.
    StaleHandle,
    /// Weights start at 1.
    ZeroWeight,
    /// A tier's burst is below the configured minimum; the old limits stay.
    BurstTooSmall(BurstTooSmall),
}

impl fmt::Display for SetLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetLimitError::StaleHandle => "the node no longer exists",
            SetLimitError::ZeroWeight => "a node's weight must be at least 1",
            SetLimitError::BurstTooSmall(e) => return e.fmt(f),
        })
    }
}

impl core::error::Error for SetLimitError {}

error_enum! {
    /// Why [`Tree::remove`](crate::Tree::remove) failed.
    RemoveError {
        /// The node was already removed.
        StaleHandle => "the node no longer exists",
        /// Remove the children first.
        HasChildren => "the node still has children",
    }
}

error_enum! {
    /// A handle that no longer refers to a node (used by read-only queries).
    StaleHandle {
        /// The node was removed.
        Removed => "the node no longer exists",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_one_line() {
        extern crate alloc;
        use alloc::string::ToString;
        let s = SettleError::UsedMoreThanGranted.to_string();
        assert!(!s.contains('\n') && !s.is_empty());
        assert_eq!(
            InsertError::CapacityFull.to_string(),
            "the tree's storage is full"
        );
    }
}
