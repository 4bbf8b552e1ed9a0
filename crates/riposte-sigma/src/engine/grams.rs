//! Finding thousands of short literals in a text at once, by their rarest
//! window of bytes.
//!
//! Each literal of four to nineteen bytes is known by one of its 4-byte
//! windows: the window the fewest other literals share, since a window many
//! literals hold (`.exe`, `\windows`) is likely common in text too. A scan
//! reads the text's window at every position, tests one bit of a small
//! filter (hashed, 16 bits a literal: 16 KiB for SigmaHQ's largest such
//! field) and, rarely, looks the window up and compares the literals known
//! by it.
//!
//! Longer literals (the hashes of `Hashes`, long paths) are found reading a
//! text's 8-byte windows only every 13th position: each is known by a run of
//! 13 consecutive windows, one of which starts at a read position wherever
//! the literal occurs (a filter of 4 bits a window: 64 KiB for `Hashes`).
//! Two- and three-byte literals are found by their first two bytes (a direct
//! bitmap), one-byte literals by a table.
//!
//! Against an Aho-Corasick automaton of the same literals, whose every byte
//! is a dependent lookup in a large table, this reads each position
//! independently: on SigmaHQ's 5,600 `Hashes` literals it is about ten times
//! faster, and never slower on the other fields' (see docs/PERFORMANCE.md).

use rustc_hash::FxHashMap;

/// Filter bits per literal: about one position in sixteen of a text with no
/// literal is looked up.
const BITS_PER_LITERAL: usize = 16;
/// Filter bits per window of a strided scan: it reads few positions, so its
/// filter can pass more of them, and is smaller than one of 16 bits a window
/// would be (a literal has `stride` windows).
const BITS_PER_STRIDED_WINDOW: usize = 4;

/// Where a literal lies around its window: its id and how far its start is
/// before the window's.
#[derive(Copy, Clone, Debug)]
struct Placed {
    id: u32,
    offset: u32,
}

/// A window of bytes a literal is known by: four or eight of them, read
/// as one integer.
trait Window: Copy + Eq + std::hash::Hash {
    const WIDTH: usize;
    /// Multiplies the window for the filter's hash (odd, bits well mixed).
    const MIX: u64;
    /// The window at the start of `bytes` (which holds at least `WIDTH`).
    fn read(bytes: &[u8]) -> Self;
    fn bits(self) -> u64;
}

impl Window for u32 {
    const WIDTH: usize = 4;
    const MIX: u64 = 0xC2B2_AE3D_27D4_EB4F;

    #[inline(always)]
    fn read(bytes: &[u8]) -> u32 {
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }

    #[inline]
    fn bits(self) -> u64 {
        u64::from(self)
    }
}

impl Window for u64 {
    const WIDTH: usize = 8;
    const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

    #[inline(always)]
    fn read(bytes: &[u8]) -> u64 {
        u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]])
    }

    #[inline]
    fn bits(self) -> u64 {
        self
    }
}

/// The literals known by windows of one width: a filter of one hashed bit
/// per window (sized to their number), and the literals by window.
///
/// With a stride of `s`, a scan reads only every `s`-th position of a text,
/// and each literal is known by `s` consecutive windows instead of one: an
/// occurrence spans exactly one read position among the starts of those
/// windows, so it is found once. Literals must hold at least `WIDTH + s - 1`
/// bytes.
#[derive(Debug)]
struct Windows<W> {
    stride: usize,
    filter: Box<[u64]>,
    shift: u32,
    /// Where each window's literals lie in `placed`: one allocation for
    /// all, rather than one per window (a long literal has a dozen).
    by_window: FxHashMap<W, (u32, u32)>,
    placed: Box<[Placed]>,
}

impl<W: Window> Windows<W> {
    /// Chooses each literal's run of `stride` windows (the run whose windows
    /// the fewest literals share, summed; the later one on a tie, as literals
    /// differ more at their ends). With a stride of one, that is the rarest
    /// window; a literal of exactly `WIDTH + stride - 1` bytes has one run.
    fn new(literals: &[(u32, &[u8])], stride: usize) -> Option<Windows<W>> {
        if literals.is_empty() {
            return None;
        }
        // Buffers reused from literal to literal: a rule set has thousands.
        let mut all: Vec<W> = Vec::new();
        let mut sharing: FxHashMap<W, u32> = FxHashMap::default();
        for (_, text) in literals {
            all.clear();
            all.extend(text.windows(W::WIDTH).map(W::read));
            all.sort_unstable_by_key(|window| window.bits());
            all.dedup();
            for &window in &all {
                *sharing.entry(window).or_default() += 1;
            }
        }
        let bits_per_window = if stride == 1 { BITS_PER_LITERAL } else { BITS_PER_STRIDED_WINDOW };
        let bits = (literals.len() * stride * bits_per_window).next_power_of_two().max(512);
        let mut windows = Windows {
            stride,
            filter: vec![0; bits / 64].into_boxed_slice(),
            shift: 64 - bits.trailing_zeros(),
            by_window: FxHashMap::default(),
            placed: Box::default(),
        };
        let mut chosen: Vec<(W, Placed)> = Vec::with_capacity(literals.len() * stride);
        for &(id, text) in literals {
            all.clear();
            all.extend(text.windows(W::WIDTH).map(W::read));
            debug_assert!(text.len() >= W::WIDTH + stride - 1, "a literal too short for its stride");
            let Some((start, run)) = all.windows(stride).enumerate().min_by_key(|(start, run)| {
                (run.iter().map(|window| u64::from(sharing[window])).sum::<u64>(), std::cmp::Reverse(*start))
            }) else {
                continue;
            };
            for (at, &window) in run.iter().enumerate() {
                let bit = windows.bit(window);
                windows.filter[bit / 64] |= 1 << (bit % 64);
                let offset = u32::try_from(start + at).unwrap_or(u32::MAX);
                chosen.push((window, Placed { id, offset }));
            }
        }
        // Sorted by window, each window's literals are one range of `placed`.
        chosen.sort_by_key(|(window, _)| window.bits());
        let bound = |at: usize| u32::try_from(at).unwrap_or(u32::MAX);
        windows.by_window.reserve(chosen.chunk_by(|a, b| a.0 == b.0).count());
        let mut start = 0;
        for same in chosen.chunk_by(|a, b| a.0 == b.0) {
            windows.by_window.insert(same[0].0, (bound(start), bound(start + same.len())));
            start += same.len();
        }
        windows.placed = chosen.into_iter().map(|(_, placed)| placed).collect();
        Some(windows)
    }

    #[inline]
    fn bit(&self, window: W) -> usize {
        (window.bits().wrapping_mul(W::MIX) >> self.shift) as usize
    }

    /// Calls `at` with each position of `text` whose window may know
    /// literals, and those literals.
    #[inline]
    fn scan(&self, text: &[u8], mut at: impl FnMut(usize, &[Placed])) {
        if self.stride == 1 {
            for (position, bytes) in text.windows(W::WIDTH).enumerate() {
                self.look(position, bytes, &mut at);
            }
        } else {
            for position in (0..(text.len() + 1).saturating_sub(W::WIDTH)).step_by(self.stride) {
                self.look(position, &text[position..], &mut at);
            }
        }
    }

    /// Calls `at` if the window at the start of `bytes` may know literals.
    #[inline(always)]
    fn look(&self, position: usize, bytes: &[u8], at: &mut impl FnMut(usize, &[Placed])) {
        let window = W::read(bytes);
        let bit = self.bit(window);
        if self.filter[bit / 64] & (1 << (bit % 64)) != 0
            && let Some(&(start, end)) = self.by_window.get(&window)
        {
            at(position, &self.placed[start as usize..end as usize]);
        }
    }
}

/// Two- and three-byte literals: a bit per first two bytes, and the
/// literals that start with them.
#[derive(Debug)]
struct Pairs {
    bits: Box<[u64; 1024]>,
    starts: FxHashMap<u16, Vec<u32>>,
}

/// The literals to find, and the tables that find them.
#[derive(Debug)]
pub(crate) struct Grams {
    literals: Vec<Box<[u8]>>,
    /// Empty literals: found in every text.
    empty: Vec<u32>,
    /// One-byte literals by their byte.
    bytes: Option<Box<[Vec<u32>; 256]>>,
    pairs: Option<Pairs>,
    fours: Option<Windows<u32>>,
    /// Literals of `STRIDED_FROM` bytes or more, read with `STRIDE`.
    eights: Option<Windows<u64>>,
}

/// Literals of this length or more are known by 8-byte windows read with a
/// stride; shorter ones (from four bytes) by 4-byte windows at every position.
const STRIDED_FROM: usize = 20;
/// At most `STRIDED_FROM - 7`, so that a run of windows fits in a literal.
/// A longer stride reads fewer positions but registers more windows, whose
/// lookups cost more where literals share them; this one measured best on
/// SigmaHQ's rules (callgrind, `match_passes`; see docs/PERFORMANCE.md).
const STRIDE: usize = 13;
const _: () = assert!(STRIDE + 7 <= STRIDED_FROM);

#[inline]
fn pair(first: u8, second: u8) -> u16 {
    u16::from(first) | (u16::from(second) << 8)
}

impl Grams {
    /// Prepares to find `literals`; each find reports a literal by its
    /// position in this list.
    pub(crate) fn new<'a>(literals: impl IntoIterator<Item = &'a [u8]>) -> Grams {
        let literals: Vec<Box<[u8]>> = literals.into_iter().map(Box::from).collect();
        let mut grams =
            Grams { literals: Vec::new(), empty: Vec::new(), bytes: None, pairs: None, fours: None, eights: None };
        let fours: Vec<(u32, &[u8])> =
            with_ids(&literals).filter(|(_, text)| (4..STRIDED_FROM).contains(&text.len())).collect();
        grams.fours = Windows::new(&fours, 1);
        let eights: Vec<(u32, &[u8])> = with_ids(&literals).filter(|(_, text)| text.len() >= STRIDED_FROM).collect();
        grams.eights = Windows::new(&eights, STRIDE);
        for (id, text) in with_ids(&literals) {
            match text.len() {
                0 => grams.empty.push(id),
                1 => grams.bytes.get_or_insert_with(|| Box::new(std::array::from_fn(|_| Vec::new())))
                    [usize::from(text[0])]
                .push(id),
                2 | 3 => {
                    let pairs = grams
                        .pairs
                        .get_or_insert_with(|| Pairs { bits: Box::new([0; 1024]), starts: FxHashMap::default() });
                    let key = pair(text[0], text[1]);
                    pairs.bits[usize::from(key) / 64] |= 1 << (key % 64);
                    pairs.starts.entry(key).or_default().push(id);
                }
                _ => {}
            }
        }
        grams.literals = literals;
        grams
    }

    /// Calls `found` with the id of every literal `text` holds, once per
    /// place it is found (in no particular order).
    pub(crate) fn find(&self, text: &[u8], found: &mut impl FnMut(u32)) {
        self.empty.iter().copied().for_each(&mut *found);
        if let Some(bytes) = &self.bytes {
            for &byte in text {
                bytes[usize::from(byte)].iter().copied().for_each(&mut *found);
            }
        }
        if let Some(Pairs { bits, starts }) = &self.pairs {
            for (at, two) in text.windows(2).enumerate() {
                let key = pair(two[0], two[1]);
                if bits[usize::from(key) / 64] & (1 << (key % 64)) != 0 {
                    for &id in starts.get(&key).into_iter().flatten() {
                        if text[at..].starts_with(&self.literals[id as usize]) {
                            found(id);
                        }
                    }
                }
            }
        }
        if let Some(fours) = &self.fours {
            fours.scan(text, |at, placed| self.compare(text, at, placed, found));
        }
        if let Some(eights) = &self.eights {
            eights.scan(text, |at, placed| self.compare(text, at, placed, found));
        }
    }

    /// Reports the literals placed around the window at `at` that are there.
    #[inline]
    fn compare(&self, text: &[u8], at: usize, placed: &[Placed], found: &mut impl FnMut(u32)) {
        for place in placed {
            let literal = &self.literals[place.id as usize];
            let Some(start) = at.checked_sub(place.offset as usize) else { continue };
            if text.get(start..start + literal.len()) == Some(literal) {
                found(place.id);
            }
        }
    }
}

fn with_ids(literals: &[Box<[u8]>]) -> impl Iterator<Item = (u32, &[u8])> {
    literals.iter().enumerate().map(|(id, text)| (u32::try_from(id).unwrap_or(u32::MAX), &**text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (non-empty literal, place) pair, the slow way.
    fn naive(literals: &[Vec<u8>], text: &[u8]) -> Vec<(u32, usize)> {
        let mut hits = Vec::new();
        for (id, literal) in literals.iter().enumerate() {
            for start in 0..text.len() {
                if text[start..].starts_with(literal) {
                    hits.push((id as u32, start));
                }
            }
        }
        hits
    }

    fn counts(hits: impl IntoIterator<Item = u32>) -> std::collections::BTreeMap<u32, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for id in hits {
            *counts.entry(id).or_insert(0) += 1;
        }
        counts
    }

    proptest::proptest! {
        /// Every literal is reported as often as it occurs, whatever the
        /// mix of lengths (the alphabet is small so that windows are shared
        /// and literals overlap).
        #[test]
        fn finds_every_occurrence_of_every_literal(
            literals in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(b"ab\\.e".to_vec()), 1..28), 1..40),
            text in proptest::collection::vec(proptest::sample::select(b"ab\\.ex".to_vec()), 0..120),
        ) {
            let grams = Grams::new(literals.iter().map(|literal| &literal[..]));
            let mut found = Vec::new();
            grams.find(&text, &mut |id| found.push(id));
            let expected = counts(naive(&literals, &text).into_iter().map(|(id, _)| id));
            proptest::prop_assert_eq!(counts(found), expected);
        }
    }

    proptest::proptest! {
        /// The same, in texts made of the literals themselves (long ones
        /// rarely occur in random text), at every offset from a stride.
        #[test]
        fn finds_literals_planted_in_the_text(
            literals in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(b"ab\\.e".to_vec()), 1..40), 1..30),
            pieces in proptest::collection::vec((0..30usize, proptest::collection::vec(proptest::sample::select(b"ab\\.ex".to_vec()), 0..7)), 0..12),
        ) {
            let mut text = Vec::new();
            for (literal, filler) in &pieces {
                text.extend_from_slice(&literals[literal % literals.len()]);
                text.extend_from_slice(filler);
            }
            let grams = Grams::new(literals.iter().map(|literal| &literal[..]));
            let mut found = Vec::new();
            grams.find(&text, &mut |id| found.push(id));
            let expected = counts(naive(&literals, &text).into_iter().map(|(id, _)| id));
            proptest::prop_assert_eq!(counts(found), expected);
        }
    }

    /// Literals that repeat their own windows (`aaaa…`, `abab…`), in texts
    /// of the same bytes: occurrences overlap at every offset from a stride.
    #[test]
    fn periodic_literals_are_found_at_every_overlapping_place() {
        let literals: Vec<Vec<u8>> = vec![
            b"a".repeat(20),
            b"a".repeat(21),
            b"a".repeat(33),
            b"ab".repeat(10),
            b"ab".repeat(13),
            b"abc".repeat(7),
            b"a".repeat(5),
        ];
        let grams = Grams::new(literals.iter().map(|literal| &literal[..]));
        for unit in [&b"a"[..], b"ab", b"abc", b"aab"] {
            for length in 0..80 {
                let text: Vec<u8> = unit.iter().copied().cycle().take(length).collect();
                let mut found = Vec::new();
                grams.find(&text, &mut |id| found.push(id));
                let expected = counts(naive(&literals, &text).into_iter().map(|(id, _)| id));
                assert_eq!(counts(found), expected, "{}", String::from_utf8_lossy(&text));
            }
        }
    }

    #[test]
    fn literals_of_every_width_at_the_edges_of_the_text() {
        let literals: Vec<&[u8]> =
            vec![b"", b"-", b"/c", b"abc", b"mimi", b"katz.exe", b"sekurlsa::logonpasswords", b"q"];
        let grams = Grams::new(literals.iter().copied());
        let mut found = Vec::new();
        grams.find(b"mimikatz.exe sekurlsa::logonpasswords /c -", &mut |id| found.push(id));
        found.sort_unstable();
        assert_eq!(found, vec![0, 1, 2, 4, 5, 6]);
        found.clear();
        grams.find(b"", &mut |id| found.push(id));
        assert_eq!(found, vec![0], "only the empty literal is in an empty text");
        found.clear();
        grams.find(b"katz.ex", &mut |id| found.push(id));
        assert!(found.iter().all(|&id| id != 5), "a literal cut off by the end of the text is not there");
    }
}
