//! A second, deliberately simple implementation of RFC 9162 / RFC 6962
//! Merkle trees (recursive MTH, PATH and PROOF/SUBPROOF written straight
//! from the RFC text, SHA-256 from the `sha2` crate instead of `ring`, and
//! verifiers that rebuild the roots by following the same recursion instead
//! of the RFC's bit-twiddling loops), checked against the Certificate
//! Transparency test vectors and then used to cross-check the production
//! code in both directions.
//!
//! The vectors are the classic CT ones, as kept in
//! github.com/transparency-dev/merkle `proof/verify_test.go` (roots for
//! sizes 1..8, inclusion and consistency proofs) and `rfc6962/rfc6962_test.go`
//! (leaf and node hashes), originally from the certificate-transparency
//! reference implementation's merkle tree tests.

use sha2::{Digest, Sha256};
use steward_audit::{
    consistency_proof, inclusion_proof, leaf_hash, node_hash, root_from_leaf_hashes, verify_consistency,
    verify_inclusion, Hash, TreeBuilder, EMPTY_ROOT,
};

// ------------------------------------------------------------------ the independent implementation

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// MTH({d(0)}) = SHA-256(0x00 || d(0)).
fn ind_leaf(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// SHA-256(0x01 || left || right), on arbitrary byte strings (the RFC 6962
/// hasher test feeds it non-hash inputs).
fn ind_node(left: &[u8], right: &[u8]) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// "k is the largest power of two smaller than n (i.e., k < n <= 2k)".
fn k_for(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH over a list of leaf hashes (the hash of an empty list is SHA-256 of
/// the empty string).
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let k = k_for(n);
            ind_node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]).
fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = k_for(n);
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

/// PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
fn proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if m == 0 || m == leaves.len() {
        return Vec::new();
    }
    subproof(m, leaves, true)
}

fn subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(leaves)] };
    }
    let k = k_for(n);
    if m <= k {
        let mut p = subproof(m, &leaves[..k], b);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = subproof(m - k, &leaves[k..], false);
        p.push(mth(&leaves[..k]));
        p
    }
}

/// Rebuilds the root from a PATH by undoing the recursion that made it: the
/// last element is the sibling at the top split.
fn root_from_path(m: usize, n: usize, leaf: Hash, proof: &[Hash]) -> Option<Hash> {
    if n == 1 {
        return proof.is_empty().then_some(leaf);
    }
    let (last, rest) = proof.split_last()?;
    let k = k_for(n);
    if m < k {
        Some(ind_node(&root_from_path(m, k, leaf, rest)?, last))
    } else {
        Some(ind_node(last, &root_from_path(m - k, n - k, leaf, rest)?))
    }
}

fn ind_verify_inclusion(leaf: Hash, m: u64, n: u64, proof: &[Hash], root: Hash) -> bool {
    let (m, n) = (m as usize, n as usize);
    m < n && root_from_path(m, n, leaf, proof) == Some(root)
}

/// Rebuilds (old subtree hash, new subtree hash) from a SUBPROOF.
fn roots_from_subproof(m: usize, n: usize, b: bool, proof: &[Hash], first_root: Hash) -> Option<(Hash, Hash)> {
    if m == n {
        return if b {
            // This subtree is the whole old tree: its hash is the old root.
            proof.is_empty().then_some((first_root, first_root))
        } else {
            match proof {
                [h] => Some((*h, *h)),
                _ => None,
            }
        };
    }
    let (last, rest) = proof.split_last()?;
    let k = k_for(n);
    if m <= k {
        let (old, new) = roots_from_subproof(m, k, b, rest, first_root)?;
        Some((old, ind_node(&new, last)))
    } else {
        let (old, new) = roots_from_subproof(m - k, n - k, false, rest, first_root)?;
        Some((ind_node(last, &old), ind_node(last, &new)))
    }
}

fn ind_verify_consistency(m: u64, n: u64, first_root: Hash, second_root: Hash, proof: &[Hash]) -> bool {
    let (m, n) = (m as usize, n as usize);
    if m > n {
        return false;
    }
    if m == n {
        return proof.is_empty() && first_root == second_root;
    }
    if m == 0 {
        return proof.is_empty() && first_root == sha256(&[]);
    }
    roots_from_subproof(m, n, true, proof, first_root) == Some((first_root, second_root))
}

// ------------------------------------------------------------------ the CT test vectors

fn hx(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn h(s: &str) -> Hash {
    hx(s).try_into().expect("32 bytes")
}

fn leaf_inputs() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| hx(s))
    .collect()
}

/// Roots of the trees over the first 1..=8 leaf inputs.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn root(size: usize) -> Hash {
    h(ROOTS[size - 1])
}

/// (leaf index, 0-based; tree size; proof). The source lists 1-based leaf numbers.
fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (0, 1, vec![]),
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            3,
            vec![h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")],
        ),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
    ]
}

/// (first size, second size, proof).
fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

fn vector_leaf_hashes() -> Vec<Hash> {
    leaf_inputs().iter().map(|d| ind_leaf(d)).collect()
}

#[test]
fn independent_hasher_matches_rfc6962_vectors() {
    assert_eq!(
        sha256(&[]),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(
        ind_leaf(b""),
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    assert_eq!(
        ind_leaf(b"L123456"),
        h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    );
    assert_eq!(
        ind_node(b"N123", b"N456"),
        h("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")
    );
    // The production hasher agrees on the leaf vectors and the empty root.
    assert_eq!(leaf_hash(b""), ind_leaf(b""));
    assert_eq!(leaf_hash(b"L123456"), ind_leaf(b"L123456"));
    assert_eq!(EMPTY_ROOT, sha256(&[]));
}

#[test]
fn roots_match_ct_vectors() {
    let leaves = vector_leaf_hashes();
    assert_eq!(mth(&[]), EMPTY_ROOT);
    assert_eq!(root_from_leaf_hashes(&[]), EMPTY_ROOT);
    let mut tb = TreeBuilder::new();
    for n in 1..=8 {
        tb.push(leaf_hash(&leaf_inputs()[n - 1]));
        assert_eq!(mth(&leaves[..n]), root(n), "independent root, size {n}");
        assert_eq!(
            root_from_leaf_hashes(&leaves[..n]),
            root(n),
            "production root, size {n}"
        );
        assert_eq!(tb.root(), root(n), "TreeBuilder root, size {n}");
    }
    assert_eq!(
        root_from_leaf_hashes(&leaves),
        h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
    );
}

#[test]
fn inclusion_proofs_match_ct_vectors() {
    let leaves = vector_leaf_hashes();
    for (m, n, want) in inclusion_vectors() {
        let (mu, nu) = (m as usize, n as usize);
        assert_eq!(path(mu, &leaves[..nu]), want, "independent PATH({m}, {n})");
        assert_eq!(
            inclusion_proof(&leaves, m, n).unwrap(),
            want,
            "production PATH({m}, {n})"
        );
        assert!(
            ind_verify_inclusion(leaves[mu], m, n, &want, root(nu)),
            "independent verify ({m}, {n})"
        );
        assert_eq!(
            verify_inclusion(&leaves[mu], m, n, &want, &root(nu)),
            Ok(()),
            "production verify ({m}, {n})"
        );
        for (desc, probe) in inclusion_corruptions(m, n, &want, leaves[mu], root(nu)) {
            let (pm, pn, pleaf, pproof, proot) = probe;
            assert!(
                !ind_verify_inclusion(pleaf, pm, pn, &pproof, proot),
                "independent verifier accepted {desc} for ({m}, {n})"
            );
            assert!(
                verify_inclusion(&pleaf, pm, pn, &pproof, &proot).is_err(),
                "production verifier accepted {desc} for ({m}, {n})"
            );
        }
    }
}

type InclusionProbe = (u64, u64, Hash, Vec<Hash>, Hash);

/// The corruptions of transparency-dev/merkle's `corruptInclusionProof`.
fn inclusion_corruptions(m: u64, n: u64, proof: &[Hash], leaf: Hash, root: Hash) -> Vec<(String, InclusionProbe)> {
    let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    let p = proof.to_vec();
    let mut out = vec![
        ("index + 1".to_owned(), (m + 1, n, leaf, p.clone(), root)),
        ("index ^ 2".to_owned(), (m ^ 2, n, leaf, p.clone(), root)),
        ("size * 2".to_owned(), (m, n * 2, leaf, p.clone(), root)),
        ("size / 2".to_owned(), (m, n / 2, leaf, p.clone(), root)),
        ("wrong leaf".to_owned(), (m, n, ind_leaf(b"WrongLeaf"), p.clone(), root)),
        ("empty root".to_owned(), (m, n, leaf, p.clone(), EMPTY_ROOT)),
        ("random root".to_owned(), (m, n, leaf, p.clone(), some)),
        (
            "trailing root".to_owned(),
            (m, n, leaf, [p.clone(), vec![root]].concat(), root),
        ),
        (
            "preceding root".to_owned(),
            (m, n, leaf, [vec![root], p.clone()].concat(), root),
        ),
    ];
    if m > 0 {
        out.push(("index - 1".to_owned(), (m - 1, n, leaf, p.clone(), root)));
    }
    for i in 0..p.len() {
        let mut q = p.clone();
        q[i][0] ^= 8;
        out.push((format!("modified proof[{i}] bit 3"), (m, n, leaf, q, root)));
    }
    if !p.is_empty() {
        out.push((
            "removed component".to_owned(),
            (m, n, leaf, p[..p.len() - 1].to_vec(), root),
        ));
    }
    if p.len() > 1 {
        let q = [vec![p[0], some], p[1..].to_vec()].concat();
        out.push(("inserted component".to_owned(), (m, n, leaf, q, root)));
        let mut q = p.clone();
        q.swap(0, 1);
        out.push(("swapped components".to_owned(), (m, n, leaf, q, root)));
    }
    out
}

#[test]
fn consistency_proofs_match_ct_vectors() {
    let leaves = vector_leaf_hashes();
    for (m, n, want) in consistency_vectors() {
        let (mu, nu) = (m as usize, n as usize);
        assert_eq!(proof(mu, &leaves[..nu]), want, "independent PROOF({m}, {n})");
        assert_eq!(
            consistency_proof(&leaves, m, n).unwrap(),
            want,
            "production PROOF({m}, {n})"
        );
        let (r1, r2) = (root(mu), root(nu));
        assert!(
            ind_verify_consistency(m, n, r1, r2, &want),
            "independent verify ({m}, {n})"
        );
        assert_eq!(
            verify_consistency(m, n, &r1, &r2, &want),
            Ok(()),
            "production verify ({m}, {n})"
        );
        if want.is_empty() {
            continue;
        }
        for (desc, (pm, pn, pr1, pr2, pproof)) in consistency_corruptions(m, n, r1, r2, &want) {
            assert!(
                !ind_verify_consistency(pm, pn, pr1, pr2, &pproof),
                "independent verifier accepted {desc} for ({m}, {n})"
            );
            assert!(
                verify_consistency(pm, pn, &pr1, &pr2, &pproof).is_err(),
                "production verifier accepted {desc} for ({m}, {n})"
            );
        }
    }
}

type ConsistencyProbe = (u64, u64, Hash, Hash, Vec<Hash>);

/// The corruptions of transparency-dev/merkle's `corruptConsistencyProof`.
fn consistency_corruptions(m: u64, n: u64, r1: Hash, r2: Hash, proof: &[Hash]) -> Vec<(String, ConsistencyProbe)> {
    let p = proof.to_vec();
    let wrong = ind_leaf(b"WrongRoot");
    let mut out = vec![
        ("size1 - 1".to_owned(), (m - 1, n, r1, r2, p.clone())),
        ("size1 + 1".to_owned(), (m + 1, n, r1, r2, p.clone())),
        ("size1 ^ 2".to_owned(), (m ^ 2, n, r1, r2, p.clone())),
        ("size2 * 2".to_owned(), (m, n * 2, r1, r2, p.clone())),
        ("size2 / 2".to_owned(), (m, n / 2, r1, r2, p.clone())),
        ("wrong root1".to_owned(), (m, n, wrong, r2, p.clone())),
        ("wrong root2".to_owned(), (m, n, r1, wrong, p.clone())),
        ("swapped roots".to_owned(), (m, n, r2, r1, p.clone())),
        ("empty proof".to_owned(), (m, n, r1, r2, vec![])),
        (
            "trailing root1".to_owned(),
            (m, n, r1, r2, [p.clone(), vec![r1]].concat()),
        ),
        (
            "trailing root2".to_owned(),
            (m, n, r1, r2, [p.clone(), vec![r2]].concat()),
        ),
        (
            "preceding root1".to_owned(),
            (m, n, r1, r2, [vec![r1], p.clone()].concat()),
        ),
        (
            "preceding root2".to_owned(),
            (m, n, r1, r2, [vec![r2], p.clone()].concat()),
        ),
        (
            "preceding proof[0]".to_owned(),
            (m, n, r1, r2, [vec![p[0]], p.clone()].concat()),
        ),
        ("truncated proof".to_owned(), (m, n, r1, r2, p[..p.len() - 1].to_vec())),
    ];
    for i in 0..p.len() {
        let mut q = p.clone();
        q[i][0] ^= 16;
        out.push((format!("modified proof[{i}] bit 4"), (m, n, r1, r2, q)));
    }
    if p.len() > 1 {
        let mut q = p.clone();
        q.swap(0, 1);
        out.push(("swapped components".to_owned(), (m, n, r1, r2, q)));
    }
    // A consistency proof is never valid backwards.
    out.push(("first > second".to_owned(), (n, m, r2, r1, p.clone())));
    out
}

// ------------------------------------------------------------------ cross-checks

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_leaves(rng: &mut Rng, n: usize) -> Vec<Hash> {
    (0..n)
        .map(|_| ind_leaf(&rng.next().to_le_bytes()[..(rng.below(8) as usize)]))
        .collect()
}

/// Checks everything for one tree of `n` leaves: roots, every inclusion
/// proof, and consistency proofs from every `first` (to `n`, and to random
/// sizes in between when `all_pairs`).
fn cross_check(leaves: &[Hash], all_pairs: bool) {
    let n = leaves.len();
    let roots: Vec<Hash> = (0..=n).map(|s| mth(&leaves[..s])).collect();
    // Roots: independent, production, incremental at every size.
    let mut tb = TreeBuilder::new();
    for s in 0..=n {
        assert_eq!(root_from_leaf_hashes(&leaves[..s]), roots[s], "root of size {s}");
        assert_eq!(tb.root(), roots[s], "TreeBuilder root of size {s}");
        assert_eq!(tb.size(), s as u64);
        if s < n {
            tb.push(leaves[s]);
        }
    }
    let nu = n as u64;
    // Inclusion: every index.
    for i in 0..n {
        let prod = inclusion_proof(leaves, i as u64, nu).expect("a proof");
        let ind = path(i, leaves);
        assert_eq!(prod, ind, "PATH({i}, {n})");
        assert!(
            ind_verify_inclusion(leaves[i], i as u64, nu, &prod, roots[n]),
            "({i}, {n}) production proof"
        );
        assert_eq!(
            verify_inclusion(&leaves[i], i as u64, nu, &ind, &roots[n]),
            Ok(()),
            "({i}, {n})"
        );
        // And both reject the neighbouring leaf and a flipped proof bit.
        let other = leaves[(i + 1) % n];
        if other != leaves[i] {
            assert!(!ind_verify_inclusion(other, i as u64, nu, &prod, roots[n]));
            assert!(verify_inclusion(&other, i as u64, nu, &prod, &roots[n]).is_err());
        }
        if !prod.is_empty() {
            let mut bad = prod.clone();
            let j = i % bad.len();
            bad[j][i % 32] ^= 1;
            assert!(!ind_verify_inclusion(leaves[i], i as u64, nu, &bad, roots[n]));
            assert!(verify_inclusion(&leaves[i], i as u64, nu, &bad, &roots[n]).is_err());
        }
    }
    // Consistency: every first size against n, or every pair.
    let seconds: Vec<usize> = if all_pairs { (0..=n).collect() } else { vec![n] };
    for &second in &seconds {
        for first in 0..=second {
            let (m, s) = (first as u64, second as u64);
            let prod = consistency_proof(leaves, m, s).expect("a proof");
            let ind = proof(first, &leaves[..second]);
            assert_eq!(prod, ind, "PROOF({first}, {second})");
            assert!(
                ind_verify_consistency(m, s, roots[first], roots[second], &prod),
                "({first}, {second}) production proof"
            );
            assert_eq!(
                verify_consistency(m, s, &roots[first], &roots[second], &ind),
                Ok(()),
                "({first}, {second})"
            );
            if !prod.is_empty() {
                let mut bad = prod.clone();
                let j = first % bad.len();
                bad[j][first % 32] ^= 0x40;
                assert!(!ind_verify_consistency(m, s, roots[first], roots[second], &bad));
                assert!(verify_consistency(m, s, &roots[first], &roots[second], &bad).is_err());
            }
        }
    }
}

#[test]
fn cross_check_every_pair_up_to_64() {
    let mut rng = Rng(0x5eed_0001);
    let leaves = random_leaves(&mut rng, 64);
    cross_check(&leaves, true);
}

#[test]
fn cross_check_random_sizes_up_to_300() {
    let mut rng = Rng(0x5eed_0002);
    let mut sizes: Vec<usize> = (0..24).map(|_| 1 + rng.below(300) as usize).collect();
    sizes.extend([1, 2, 3, 127, 128, 129, 255, 256, 257, 300]);
    for n in sizes {
        let leaves = random_leaves(&mut rng, n);
        cross_check(&leaves, false);
        // Plus random pairs below n.
        for _ in 0..50 {
            let second = 1 + rng.below(n as u64);
            let first = rng.below(second + 1);
            let prod = consistency_proof(&leaves, first, second).unwrap();
            let (r1, r2) = (mth(&leaves[..first as usize]), mth(&leaves[..second as usize]));
            assert_eq!(prod, proof(first as usize, &leaves[..second as usize]));
            assert!(ind_verify_consistency(first, second, r1, r2, &prod));
            assert_eq!(verify_consistency(first, second, &r1, &r2, &prod), Ok(()));
        }
    }
}

#[test]
fn production_node_hash_matches_independent() {
    let a = ind_leaf(b"a");
    let b = ind_leaf(b"b");
    assert_eq!(node_hash(&a, &b), ind_node(&a, &b));
    assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
}
