//! Minimum-cost assignment between two sets where leaving an item unassigned is allowed and
//! some pairs are forbidden: the Hungarian method (Kuhn-Munkres with potentials), O(n^3).

/// Pairs (row, column) of the cheapest assignment. `cost[r][c]` is `None` where row `r` may
/// not take column `c`; leaving a row or a column unassigned costs `unassigned` each, so a pair
/// is taken only when it costs less than `2 * unassigned`.
pub fn assign(cost: &[Vec<Option<f64>>], columns: usize, unassigned: f64) -> Vec<(usize, usize)> {
    let rows = cost.len();
    let n = rows + columns;
    // A pair that is forbidden costs more than leaving both items unassigned.
    let forbidden = 4.0 * unassigned.abs() + 1.0;
    let padded = |r: usize, c: usize| -> f64 {
        match (r < rows, c < columns) {
            (true, true) => cost[r][c].unwrap_or(forbidden),
            (true, false) => if c - columns == r { unassigned } else { forbidden },
            (false, true) => if r - rows == c { unassigned } else { forbidden },
            (false, false) => 0.0,
        }
    };
    let column_of_row = hungarian(n, padded);
    column_of_row
        .into_iter()
        .enumerate()
        .filter(|&(r, c)| r < rows && c < columns && cost[r][c].is_some())
        .collect()
}

/// For a square n x n cost, the column assigned to each row.
fn hungarian(n: usize, cost: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    // 1-based arrays with a virtual column 0, as in the classic formulation.
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; n + 1];
    let mut row_of = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for r in 1..=n {
        row_of[0] = r;
        let mut c0 = 0;
        let mut min = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[c0] = true;
            let r0 = row_of[c0];
            let (mut delta, mut c1) = (f64::INFINITY, 0);
            for c in 1..=n {
                if used[c] {
                    continue;
                }
                let reduced = cost(r0 - 1, c - 1) - u[r0] - v[c];
                if reduced < min[c] {
                    min[c] = reduced;
                    way[c] = c0;
                }
                if min[c] < delta {
                    delta = min[c];
                    c1 = c;
                }
            }
            for c in 0..=n {
                if used[c] {
                    u[row_of[c]] += delta;
                    v[c] -= delta;
                } else {
                    min[c] -= delta;
                }
            }
            c0 = c1;
            if row_of[c0] == 0 {
                break;
            }
        }
        loop {
            let c1 = way[c0];
            row_of[c0] = row_of[c1];
            c0 = c1;
            if c0 == 0 {
                break;
            }
        }
    }
    let mut column_of_row = vec![0; n];
    for c in 1..=n {
        column_of_row[row_of[c] - 1] = c - 1;
    }
    column_of_row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_cheapest_total_not_the_greedy_pairs() {
        // Greedy would give row 0 column 0 (1.0) and leave row 1 with 10.0.
        let cost = vec![vec![Some(1.0), Some(2.0)], vec![Some(1.5), Some(10.0)]];
        assert_eq!(assign(&cost, 2, 100.0), vec![(0, 1), (1, 0)]);
    }

    #[test]
    fn forbidden_and_expensive_pairs_stay_unassigned() {
        let cost = vec![vec![None, Some(0.5)], vec![None, Some(0.4)], vec![Some(5.0), None]];
        // Rows 0 and 1 compete for column 1; row 2's only pair costs more than 2 x 1.0.
        assert_eq!(assign(&cost, 2, 1.0), vec![(1, 1)]);
        assert!(assign(&[], 3, 1.0).is_empty());
        assert!(assign(&[vec![], vec![]], 0, 1.0).is_empty());
    }

    #[test]
    fn one_column_never_goes_to_two_rows() {
        let cost: Vec<Vec<Option<f64>>> = (0..6).map(|r| (0..4).map(|c| Some(((r * 7 + c * 3) % 5) as f64 * 0.1)).collect()).collect();
        let pairs = assign(&cost, 4, 1.0);
        let mut columns: Vec<usize> = pairs.iter().map(|p| p.1).collect();
        columns.sort();
        columns.dedup();
        assert_eq!(columns.len(), 4);
        assert_eq!(pairs.len(), 4);
    }
}
