//! RFC 9162 (Certificate Transparency v2) Merkle tree hashing with SHA-256.
//!
//! - A leaf's hash is `SHA-256(0x00 || entry)` and an interior node's is
//!   `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1).
//! - The tree over `n` leaves splits at `k`, the largest power of two smaller
//!   than `n`: `MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`. The
//!   empty tree's root is `SHA-256("")` ([`EMPTY_ROOT`]).
//! - Inclusion and consistency proofs are generated as PATH and
//!   PROOF/SUBPROOF of RFC 9162 §2.1.3.1 and §2.1.4.1 and verified with the
//!   iterative algorithms of §2.1.3.2 and §2.1.4.2.
//!
//! Roots are computed with a [`TreeBuilder`] (a "compact range": one stored
//! hash per set bit of the tree size), so any number of leaves costs `n - 1`
//! node hashes and `O(log n)` memory, without recursion.

use ring::digest;

/// A SHA-256 hash: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

fn to_hash(d: &digest::Digest) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(d.as_ref());
    h
}

/// `SHA-256(0x00 || entry)`: the hash of a leaf.
#[must_use]
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&[0x00]);
    ctx.update(entry);
    to_hash(&ctx.finish())
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    to_hash(&digest::digest(&digest::SHA256, &buf))
}

/// Builds a tree root incrementally: push leaf hashes one by one and ask for
/// the root of the tree so far at any time.
///
/// It keeps the roots of the perfect subtrees that make up the tree (one per
/// set bit of the size, largest first), so memory is `O(log n)` and pushing
/// costs one node hash on average.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeBuilder {
    size: u64,
    frontier: Vec<Hash>,
}

impl TreeBuilder {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        // Each trailing one bit of the old size is a perfect subtree of the
        // same height as `h`: merge them.
        while s & 1 == 1 {
            match self.frontier.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break, // unreachable: the frontier holds one hash per set bit of `size`
            }
            s >>= 1;
        }
        self.frontier.push(h);
        self.size += 1;
    }

    /// The number of leaves pushed.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees that make up the tree, largest
    /// first (one per set bit of the size).
    #[must_use]
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// The tree of `size` leaves whose perfect subtrees have these roots
    /// (as [`TreeBuilder::frontier`] returns them); `None` unless there is
    /// exactly one root per set bit of `size`.
    #[must_use]
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Option<Self> {
        (frontier.len() == size.count_ones() as usize).then_some(Self { size, frontier })
    }

    /// The root of the tree over the leaves pushed so far (MTH).
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut it = self.frontier.iter().rev();
        match it.next() {
            None => EMPTY_ROOT,
            Some(last) => it.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// The root of the tree over `leaves` (MTH of RFC 9162 §2.1.1): `n - 1` node
/// hashes, `O(log n)` extra memory, no recursion.
#[must_use]
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    let mut t = TreeBuilder::new();
    for l in leaves {
        t.push(*l);
    }
    t.root()
}

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree sizes {first} and {second} are out of order (a consistency proof needs first <= second)")]
    BadSizes { first: u64, second: u64 },
    #[error("tree size {size} is larger than the {available} leaf hashes given")]
    NotEnoughLeaves { size: u64, available: u64 },
    #[error("the proof has {got} hashes where {expected} are needed")]
    WrongLength { expected: usize, got: usize },
    #[error("the proof does not lead to the expected root hash")]
    Mismatch,
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

fn leaves_for(leaves: &[Hash], size: u64) -> Result<&[Hash], ProofError> {
    let available = leaves.len() as u64;
    if size > available {
        return Err(ProofError::NotEnoughLeaves { size, available });
    }
    // `size <= leaves.len()`, so it fits in usize.
    Ok(&leaves[..usize::try_from(size).unwrap_or(leaves.len())])
}

fn range(leaves: &[Hash], lo: u64, hi: u64) -> &[Hash] {
    // Callers keep lo <= hi <= leaves.len().
    let lo = usize::try_from(lo).unwrap_or(usize::MAX);
    let hi = usize::try_from(hi).unwrap_or(usize::MAX);
    &leaves[lo..hi]
}

/// The inclusion (audit) path for leaf `index` in the tree of the first
/// `tree_size` leaf hashes (PATH of RFC 9162 §2.1.3.1): sibling subtree
/// roots from the leaf upwards.
pub fn inclusion_proof(leaves: &[Hash], index: u64, tree_size: u64) -> Result<Vec<Hash>, ProofError> {
    let leaves = leaves_for(leaves, tree_size)?;
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, size: tree_size });
    }
    // Walk down from the root; each split contributes the other side's root.
    let (mut lo, mut hi) = (0u64, tree_size);
    let mut path = Vec::new();
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            path.push(root_from_leaf_hashes(range(leaves, mid, hi)));
            hi = mid;
        } else {
            path.push(root_from_leaf_hashes(range(leaves, lo, mid)));
            lo = mid;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof between the trees of the first `first` and the
/// first `second` leaf hashes (PROOF/SUBPROOF of RFC 9162 §2.1.4.1). Empty
/// when `first` is 0 or equals `second`.
pub fn consistency_proof(leaves: &[Hash], first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
    if first > second {
        return Err(ProofError::BadSizes { first, second });
    }
    let leaves = leaves_for(leaves, second)?;
    if first == 0 || first == second {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled: each step appends one subtree root
    // after the proof of the deeper step, so collect top-down and reverse.
    let (mut lo, mut hi, mut m, mut whole) = (0u64, second, first, true);
    let mut tail = Vec::new();
    let mut base = None;
    loop {
        let n = hi - lo;
        if m == n {
            if !whole {
                base = Some(root_from_leaf_hashes(range(leaves, lo, hi)));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            tail.push(root_from_leaf_hashes(range(leaves, lo + k, hi)));
            hi = lo + k;
        } else {
            tail.push(root_from_leaf_hashes(range(leaves, lo, lo + k)));
            lo += k;
            m -= k;
            whole = false;
        }
    }
    Ok(base.into_iter().chain(tail.into_iter().rev()).collect())
}

/// Shifts `fn` and `sn` right while `fn` is even and non-zero.
fn shift_while_even(f: &mut u64, s: &mut u64) {
    while *f & 1 == 0 && *f != 0 {
        *f >>= 1;
        *s >>= 1;
    }
}

/// How many hashes the §2.1.3.2 algorithm consumes for (`index`, `size`).
fn inclusion_len(index: u64, size: u64) -> usize {
    let (mut f, mut s) = (index, size - 1);
    let mut n = 0;
    while s != 0 {
        if f & 1 == 1 || f == s {
            shift_while_even(&mut f, &mut s);
        }
        f >>= 1;
        s >>= 1;
        n += 1;
    }
    n
}

/// How many hashes the §2.1.4.2 algorithm consumes for `0 < first < second`
/// (not counting the `first_hash` it prepends when `first` is a power of two).
fn consistency_len(first: u64, second: u64) -> usize {
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut steps = 0;
    while s != 0 {
        if f & 1 == 1 || f == s {
            shift_while_even(&mut f, &mut s);
        }
        f >>= 1;
        s >>= 1;
        steps += 1;
    }
    steps + 1 - usize::from(first.is_power_of_two())
}

/// Verifies that `leaf` is at `index` in the tree of size `tree_size` with
/// root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, size: tree_size });
    }
    let expected = inclusion_len(index, tree_size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let (mut f, mut s) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength {
                expected,
                got: proof.len(),
            });
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            shift_while_even(&mut f, &mut s);
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    if r == *root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// Verifies that the tree of size `second` with root `second_root` extends
/// the tree of size `first` with root `first_root` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need equal roots and an empty proof. A first size of 0 needs
/// an empty proof and `first_root` equal to [`EMPTY_ROOT`].
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::BadSizes { first, second });
    }
    if first == second || first == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                got: proof.len(),
            });
        }
        let ok = if first == 0 {
            *first_root == EMPTY_ROOT && (second != 0 || *second_root == EMPTY_ROOT)
        } else {
            first_root == second_root
        };
        return if ok { Ok(()) } else { Err(ProofError::Mismatch) };
    }
    let expected = consistency_len(first, second);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let wrong_length = ProofError::WrongLength {
        expected,
        got: proof.len(),
    };
    // 1. If first is an exact power of 2, prepend first_hash to the path.
    let mut path = first
        .is_power_of_two()
        .then_some(first_root)
        .into_iter()
        .chain(proof.iter());
    // 2-3. fn = first - 1, sn = second - 1; drop fn's trailing one bits.
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    // 4. fr = sr = the first value of the path.
    let Some(seed) = path.next() else {
        return Err(wrong_length);
    };
    let (mut fr, mut sr) = (*seed, *seed);
    // 5. Each subsequent value.
    for c in path {
        if s == 0 {
            return Err(wrong_length);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            shift_while_even(&mut f, &mut s);
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    // 6. fr == first_hash, sr == second_hash and sn == 0.
    if s != 0 {
        return Err(wrong_length);
    }
    if fr == *first_root && sr == *second_root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, to_hash(&digest::digest(&digest::SHA256, b"")));
        assert_eq!(root_from_leaf_hashes(&[]), EMPTY_ROOT);
        assert_eq!(TreeBuilder::new().root(), EMPTY_ROOT);
    }

    #[test]
    fn split_points() {
        let want = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
            ((1 << 40) + 1, 1 << 40),
        ];
        for (n, k) in want {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn generated_proofs_have_the_verifier_length() {
        let l = leaves(70);
        for n in 1..=70 {
            for i in 0..n {
                assert_eq!(
                    inclusion_proof(&l, i, n).unwrap().len(),
                    inclusion_len(i, n),
                    "({i}, {n})"
                );
            }
            for m in 1..n {
                assert_eq!(
                    consistency_proof(&l, m, n).unwrap().len(),
                    consistency_len(m, n),
                    "({m}, {n})"
                );
            }
        }
    }

    #[test]
    fn inclusion_rejects_tampering() {
        let l = leaves(13);
        let root = root_from_leaf_hashes(&l);
        let proof = inclusion_proof(&l, 5, 13).unwrap();
        assert_eq!(verify_inclusion(&l[5], 5, 13, &proof, &root), Ok(()));
        // Wrong root.
        let mut bad_root = root;
        bad_root[0] ^= 1;
        assert_eq!(
            verify_inclusion(&l[5], 5, 13, &proof, &bad_root),
            Err(ProofError::Mismatch)
        );
        // Wrong leaf.
        assert_eq!(verify_inclusion(&l[6], 5, 13, &proof, &root), Err(ProofError::Mismatch));
        // Wrong index (same proof length) and an index whose proof length differs.
        assert_eq!(verify_inclusion(&l[5], 4, 13, &proof, &root), Err(ProofError::Mismatch));
        assert!(verify_inclusion(&l[5], 12, 13, &proof, &root).is_err());
        // Index out of range.
        assert_eq!(
            verify_inclusion(&l[5], 13, 13, &proof, &root),
            Err(ProofError::IndexOutOfRange { index: 13, size: 13 })
        );
        assert_eq!(
            inclusion_proof(&l, 13, 13),
            Err(ProofError::IndexOutOfRange { index: 13, size: 13 })
        );
        assert_eq!(
            inclusion_proof(&l, 0, 14),
            Err(ProofError::NotEnoughLeaves {
                size: 14,
                available: 13
            })
        );
        // Truncated and extended proofs.
        assert_eq!(
            verify_inclusion(&l[5], 5, 13, &proof[..proof.len() - 1], &root),
            Err(ProofError::WrongLength {
                expected: proof.len(),
                got: proof.len() - 1
            })
        );
        let mut longer = proof.clone();
        longer.push(root);
        assert_eq!(
            verify_inclusion(&l[5], 5, 13, &longer, &root),
            Err(ProofError::WrongLength {
                expected: proof.len(),
                got: proof.len() + 1
            })
        );
        // Swapped elements.
        let mut swapped = proof.clone();
        swapped.swap(0, 1);
        assert_eq!(
            verify_inclusion(&l[5], 5, 13, &swapped, &root),
            Err(ProofError::Mismatch)
        );
        // Every single-bit flip in every element.
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][31] ^= 0x80;
            assert_eq!(verify_inclusion(&l[5], 5, 13, &p, &root), Err(ProofError::Mismatch));
        }
        // A different tree size. (Sizes 9..=16 give leaf 5 a path of the
        // same shape, so they cannot be told apart: a root does not commit
        // to its size, which is why signed tree heads sign both.)
        assert!(verify_inclusion(&l[5], 5, 26, &proof, &root).is_err());
        assert!(verify_inclusion(&l[5], 5, 6, &proof, &root).is_err());
    }

    #[test]
    fn consistency_rejects_tampering() {
        let l = leaves(13);
        let r6 = root_from_leaf_hashes(&l[..6]);
        let r13 = root_from_leaf_hashes(&l);
        let proof = consistency_proof(&l, 6, 13).unwrap();
        assert_eq!(verify_consistency(6, 13, &r6, &r13, &proof), Ok(()));
        assert_eq!(verify_consistency(6, 13, &r13, &r6, &proof), Err(ProofError::Mismatch));
        let mut bad = r13;
        bad[3] ^= 4;
        assert_eq!(verify_consistency(6, 13, &r6, &bad, &proof), Err(ProofError::Mismatch));
        assert_eq!(
            verify_consistency(13, 6, &r13, &r6, &proof),
            Err(ProofError::BadSizes { first: 13, second: 6 })
        );
        assert_eq!(
            consistency_proof(&l, 7, 6),
            Err(ProofError::BadSizes { first: 7, second: 6 })
        );
        assert!(matches!(
            verify_consistency(6, 13, &r6, &r13, &proof[1..]),
            Err(ProofError::WrongLength { .. })
        ));
        let mut longer = proof.clone();
        longer.push(r13);
        assert!(matches!(
            verify_consistency(6, 13, &r6, &r13, &longer),
            Err(ProofError::WrongLength { .. })
        ));
        let mut swapped = proof.clone();
        swapped.swap(0, 1);
        assert_eq!(
            verify_consistency(6, 13, &r6, &r13, &swapped),
            Err(ProofError::Mismatch)
        );
        for (m, n) in [(5, 13), (7, 13), (4, 13), (6, 26), (6, 6), (6, 7)] {
            assert!(verify_consistency(m, n, &r6, &r13, &proof).is_err(), "({m}, {n})");
        }
        // Trivial cases.
        assert_eq!(verify_consistency(6, 6, &r6, &r6, &[]), Ok(()));
        assert_eq!(verify_consistency(6, 6, &r6, &r13, &[]), Err(ProofError::Mismatch));
        assert!(verify_consistency(6, 6, &r6, &r6, &[r6]).is_err());
        assert_eq!(verify_consistency(0, 13, &EMPTY_ROOT, &r13, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 13, &r6, &r13, &[]), Err(ProofError::Mismatch));
        assert_eq!(consistency_proof(&l, 0, 13), Ok(Vec::new()));
        assert_eq!(consistency_proof(&l, 13, 13), Ok(Vec::new()));
    }

    #[test]
    fn tree_builder_matches_at_every_size() {
        let l = leaves(100);
        let mut t = TreeBuilder::new();
        for (i, h) in l.iter().enumerate() {
            t.push(*h);
            assert_eq!(t.size(), i as u64 + 1);
            assert_eq!(t.root(), naive_root(&l[..=i]));
        }
    }

    fn naive_root(l: &[Hash]) -> Hash {
        match l.len() {
            0 => EMPTY_ROOT,
            1 => l[0],
            n => {
                let k = usize::try_from(split_point(n as u64)).unwrap();
                node_hash(&naive_root(&l[..k]), &naive_root(&l[k..]))
            }
        }
    }
}
