//! serde for the things users write in config files: [`Rate`], [`Size`], [`Limit`] and
//! [`Schedule`] serialize as the strings of their grammar (exact: they parse back equal) and
//! deserialize from those strings; rates and sizes also from integers (bytes; a rate of 0 is
//! unlimited, the config convention), and a limit also from a table `{ rate, burst }`.
//! Errors carry the grammar's message ("'Mbps' is ambiguous: write Mbit/s …").

use core::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Limit, Rate, Schedule, Size};

macro_rules! via_display {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
via_display!(Rate, Size, Limit, Schedule);

/// Visits a string (the grammar) or an unsigned integer (`from_int`).
struct TextOrInt<T> {
    what: &'static str,
    from_int: fn(u64) -> T,
}

impl<T: core::str::FromStr> Visitor<'_> for TextOrInt<T>
where
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok((self.from_int)(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        let v = u64::try_from(v).map_err(|_| E::custom("must not be negative"))?;
        Ok((self.from_int)(v))
    }
}

fn rate_of(n: u64) -> Rate {
    if n == 0 {
        Rate::Unlimited
    } else {
        Rate::PerSecond(n)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        d.deserialize_any(TextOrInt {
            what: "a rate such as \"10M\", \"800Mbit/s\", \"off\", or bytes per second",
            from_int: rate_of,
        })
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        d.deserialize_any(TextOrInt {
            what: "a size such as \"64K\", \"1MiB\", or bytes",
            from_int: Size,
        })
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Schedule, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Schedule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a schedule such as \"20M Mon-Fri 09:00-17:00, 100M otherwise\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Schedule, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Limit, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Limit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate (\"10M\", \"10M burst 1M\", bytes per second) or a table { rate, burst }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Limit, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Limit, E> {
                Ok(rate_of(v).into())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Limit, E> {
                let v = u64::try_from(v).map_err(|_| E::custom("must not be negative"))?;
                Ok(rate_of(v).into())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Limit, A::Error> {
                let (mut rate, mut burst) = (None, None);
                while let Some(key) = map.next_key::<&str>()? {
                    match key {
                        "rate" if rate.is_none() => rate = Some(map.next_value::<Rate>()?),
                        "burst" if burst.is_none() => burst = Some(map.next_value::<Size>()?),
                        "rate" | "burst" => {
                            return Err(de::Error::duplicate_field("rate or burst"))
                        }
                        other => return Err(de::Error::unknown_field(other, &["rate", "burst"])),
                    }
                }
                Ok(Limit {
                    rate: rate.ok_or_else(|| de::Error::missing_field("rate"))?,
                    burst,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    extern crate alloc;
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn config_values_deserialize_from_strings_numbers_and_tables() {
        let r: Rate = serde_json::from_str("\"10M\"").unwrap();
        assert_eq!(r, Rate::PerSecond(10 << 20));
        let r: Rate = serde_json::from_str("0").unwrap();
        assert_eq!(r, Rate::Unlimited, "0 = unlimited, as in config files");
        let l: Limit = serde_json::from_str(r#"{"rate":"10M","burst":"1M"}"#).unwrap();
        assert_eq!(l.burst, Some(Size(1 << 20)));
        let l: Limit = serde_json::from_str("1048576").unwrap();
        assert_eq!(l.rate, Rate::PerSecond(1 << 20));
        let e = serde_json::from_str::<Rate>("\"10mbps\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Mbit/s"), "{e}");
        assert!(serde_json::from_str::<Limit>(r#"{"rate":"1M","brust":"1M"}"#).is_err());
        assert!(serde_json::from_str::<Rate>("-5").is_err());
    }

    #[test]
    fn serialized_values_read_back_equal() {
        let l = Limit {
            rate: Rate::PerSecond(1_000_001),
            burst: Some(Size(3 << 19)),
        };
        let s = serde_json::to_string(&l).unwrap();
        assert_eq!(serde_json::from_str::<Limit>(&s).unwrap(), l);
        let sched: Schedule = "20M Mon-Fri 09:00-17:00, 100M otherwise".parse().unwrap();
        let s = serde_json::to_string(&sched).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&s).unwrap(), sched);
    }
}
