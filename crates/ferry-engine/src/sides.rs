//! [`Sides`]: one value per side of a pair, so a stage handles both sides with one
//! expression instead of a pair of locals that can drift apart.

use crate::plan::Side;

/// One `T` for side A (the source, or the first two-way side) and one for side B.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sides<T> {
    pub a: T,
    pub b: T,
}

impl<T> Sides<T> {
    pub fn new(a: T, b: T) -> Self {
        Sides { a, b }
    }

    /// The same value on both sides.
    pub fn both(v: T) -> Self
    where
        T: Clone,
    {
        Sides { a: v.clone(), b: v }
    }

    /// Builds each side from a function of the side.
    pub fn from_fn(mut f: impl FnMut(Side) -> T) -> Self {
        Sides {
            a: f(Side::A),
            b: f(Side::B),
        }
    }

    pub fn get(&self, side: Side) -> &T {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    pub fn get_mut(&mut self, side: Side) -> &mut T {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    pub fn as_ref(&self) -> Sides<&T> {
        Sides {
            a: &self.a,
            b: &self.b,
        }
    }

    pub fn as_mut(&mut self) -> Sides<&mut T> {
        Sides {
            a: &mut self.a,
            b: &mut self.b,
        }
    }

    /// A then B.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Sides<U> {
        Sides {
            a: f(self.a),
            b: f(self.b),
        }
    }

    /// A then B, with the side.
    pub fn map_sides<U>(self, mut f: impl FnMut(Side, T) -> U) -> Sides<U> {
        Sides {
            a: f(Side::A, self.a),
            b: f(Side::B, self.b),
        }
    }

    pub fn zip<U>(self, other: Sides<U>) -> Sides<(T, U)> {
        Sides {
            a: (self.a, other.a),
            b: (self.b, other.b),
        }
    }

    /// `(Side::A, &a)` then `(Side::B, &b)`.
    pub fn iter(&self) -> impl Iterator<Item = (Side, &T)> {
        [(Side::A, &self.a), (Side::B, &self.b)].into_iter()
    }

    pub fn any(&self, mut f: impl FnMut(&T) -> bool) -> bool {
        f(&self.a) || f(&self.b)
    }

    pub fn all(&self, mut f: impl FnMut(&T) -> bool) -> bool {
        f(&self.a) && f(&self.b)
    }
}

impl<T> Sides<Option<T>> {
    /// Both values, when both sides have one.
    pub fn transpose(self) -> Option<Sides<T>> {
        Some(Sides {
            a: self.a?,
            b: self.b?,
        })
    }
}

impl<T, E> Sides<Result<T, E>> {
    /// Both values, or side A's error first.
    pub fn transpose(self) -> Result<Sides<T>, E> {
        Ok(Sides {
            a: self.a?,
            b: self.b?,
        })
    }
}

impl<T> IntoIterator for Sides<T> {
    type Item = (Side, T);
    type IntoIter = std::array::IntoIter<(Side, T), 2>;

    fn into_iter(self) -> Self::IntoIter {
        [(Side::A, self.a), (Side::B, self.b)].into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_map_zip_and_pick_by_side() {
        let s = Sides::new(1, 2);
        assert_eq!(*s.get(Side::B), 2);
        assert_eq!(s.map(|x| x * 10), Sides::new(10, 20));
        assert_eq!(s.zip(Sides::new("a", "b")).b, (2, "b"));
        assert_eq!(
            s.iter().map(|(side, v)| (side, *v)).collect::<Vec<_>>(),
            [(Side::A, 1), (Side::B, 2)]
        );
        let r: Sides<Result<i32, &str>> = Sides::new(Err("a"), Err("b"));
        assert_eq!(r.transpose(), Err("a"), "side A's error first");
        assert_eq!(Sides::new(Some(1), None::<i32>).transpose(), None);
    }
}
