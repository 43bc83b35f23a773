//! The transitive closure of a code system's is-a edges, computed in memory
//! at load time (each concept with itself and every ancestor), with cycle
//! detection: a cycle is an error naming a concept on it.

/// Concepts are numbered 0..n; `parents[c]` lists c's direct parents.
/// Returns (ancestor, descendant) pairs including (c, c), or the number of
/// a concept on a cycle.
pub fn closure(parents: &[Vec<u32>]) -> Result<Vec<(u32, u32)>, u32> {
    let n = parents.len();
    // Ancestors of each concept, computed in dependency order (memoised
    // depth-first search without recursion).
    let mut ancestors: Vec<Option<Vec<u32>>> = vec![None; n];
    let mut on_stack = vec![false; n];
    for start in 0..n {
        if ancestors[start].is_some() {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        on_stack[start] = true;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&parent) = parents[node].get(*next) {
                *next += 1;
                let p = parent as usize;
                if p >= n {
                    continue;
                }
                if on_stack[p] {
                    return Err(parent);
                }
                if ancestors[p].is_none() {
                    on_stack[p] = true;
                    stack.push((p, 0));
                }
                continue;
            }
            let mut own: Vec<u32> = Vec::new();
            for &parent in &parents[node] {
                own.push(parent);
                if let Some(Some(up)) = ancestors.get(parent as usize) {
                    own.extend_from_slice(up);
                }
            }
            own.sort_unstable();
            own.dedup();
            ancestors[node] = Some(own);
            on_stack[node] = false;
            stack.pop();
        }
    }
    let mut pairs = Vec::new();
    for (c, up) in ancestors.iter().enumerate() {
        let c = c as u32;
        pairs.push((c, c));
        for &a in up.iter().flatten() {
            if a != c {
                pairs.push((a, c));
            }
        }
    }
    Ok(pairs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(parents: &[&[u32]], expected: &[(u32, u32)]) {
        let parents: Vec<Vec<u32>> = parents.iter().map(|p| p.to_vec()).collect();
        let mut got = closure(&parents).unwrap();
        got.sort_unstable();
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        assert_eq!(got, expected);
    }

    #[test]
    fn chains_and_diamonds() {
        check(
            &[&[], &[0], &[1]],
            &[(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)],
        );
        // 3 is-a 1 and 2, both is-a 0.
        check(
            &[&[], &[0], &[0], &[1, 2]],
            &[
                (0, 0),
                (1, 1),
                (2, 2),
                (3, 3),
                (0, 1),
                (0, 2),
                (0, 3),
                (1, 3),
                (2, 3),
            ],
        );
    }

    #[test]
    fn a_cycle_is_an_error() {
        let parents = vec![vec![2], vec![0], vec![1]];
        assert!(closure(&parents).is_err());
        let self_loop = vec![vec![0]];
        assert!(closure(&self_loop).is_err());
    }
}
