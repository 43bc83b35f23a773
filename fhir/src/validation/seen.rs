//! Which elements of one JSON object have been met, and with which type (to
//! catch two variants of one choice element); allocation-free for the usual
//! node sizes.

/// Element presence for one object: a bitset for the first 128 element
/// indexes (R4 nodes have at most 54), a vector beyond; plus the type index
/// seen for each element, kept inline for a few elements.
#[derive(Default)]
pub(crate) struct Seen {
    bits: u128,
    overflow: Vec<u16>,
    types: [(u16, u16); 8],
    n_types: usize,
    more_types: Vec<(u16, u16)>,
}

impl Seen {
    pub fn has(&self, element: u16) -> bool {
        if element < 128 {
            self.bits & (1u128 << element) != 0
        } else {
            self.overflow.contains(&element)
        }
    }

    /// Records `element` with type `ty`; returns the type first recorded for
    /// it when it was already present.
    pub fn mark(&mut self, element: u16, ty: u16) -> Option<u16> {
        if self.has(element) {
            return self.type_of(element);
        }
        if element < 128 {
            self.bits |= 1u128 << element;
        } else {
            self.overflow.push(element);
        }
        if self.n_types < self.types.len() {
            self.types[self.n_types] = (element, ty);
            self.n_types += 1;
        } else {
            self.more_types.push((element, ty));
        }
        None
    }

    fn type_of(&self, element: u16) -> Option<u16> {
        self.types[..self.n_types]
            .iter()
            .chain(&self.more_types)
            .find(|(e, _)| *e == element)
            .map(|(_, t)| *t)
    }
}
