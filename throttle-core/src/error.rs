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

error_enum! {
    /// Why [`Tree::insert_node`](crate::Tree::insert_node) or
    /// [`Tree::insert_leaf`](crate::Tree::insert_leaf) failed.
    InsertError {
        /// The storage is full (fixed capacity) or holds `u32::MAX - 1` nodes.
        CapacityFull => "the tree's storage is full",
        /// The parent handle refers to a removed node.
        StaleParent => "the parent node no longer exists",
        /// Leaves cannot have children.
        ParentIsLeaf => "a leaf cannot be a parent",
        /// Weights start at 1.
        ZeroWeight => "a node's weight must be at least 1",
    }
}

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

error_enum! {
    /// Why [`Tree::set_limit`](crate::Tree::set_limit) or
    /// [`Tree::set_weight`](crate::Tree::set_weight) failed.
    SetLimitError {
        /// The node was removed.
        StaleHandle => "the node no longer exists",
        /// Weights start at 1.
        ZeroWeight => "a node's weight must be at least 1",
    }
}

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
