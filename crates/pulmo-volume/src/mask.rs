//! Binary masks over (z, y, x) grids: 3D connected components, and the per-slice operations
//! that find outside air and fill holes. Plain loops: these are what libtorch has no kernel for.

use std::collections::VecDeque;

/// Connected components of a mask (6-connectivity: faces, not edges or corners).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Components {
    /// Per voxel: 0 outside the mask, else the component's label (1-based).
    pub labels: Vec<u32>,
    /// `sizes[label]` = voxel count; `sizes[0]` is 0.
    pub sizes: Vec<usize>,
}

impl Components {
    /// Labels of the components, largest first.
    pub fn by_size(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = (1..self.sizes.len() as u32).collect();
        ids.sort_by_key(|&id| std::cmp::Reverse(self.sizes[id as usize]));
        ids
    }

    /// A mask of the voxels whose label satisfies `keep`.
    pub fn select(&self, keep: impl Fn(u32) -> bool) -> Vec<bool> {
        self.labels.iter().map(|&l| l != 0 && keep(l)).collect()
    }
}

/// Labels the 6-connected components of `mask` on a grid of `dims` (z, y, x). A mask whose
/// length does not match `dims` is treated as empty.
pub fn label_components(mask: &[bool], dims: [usize; 3]) -> Components {
    let [nz, ny, nx] = dims;
    let mut labels = vec![0u32; mask.len()];
    let mut sizes = vec![0usize];
    if mask.len() != nz * ny * nx {
        return Components { labels, sizes };
    }
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || labels[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32;
        labels[start] = id;
        stack.push(start);
        let mut size = 0;
        while let Some(i) = stack.pop() {
            size += 1;
            for j in face_neighbours(i, dims) {
                if mask[j] && labels[j] == 0 {
                    labels[j] = id;
                    stack.push(j);
                }
            }
        }
        sizes.push(size);
    }
    Components { labels, sizes }
}

/// Voxel offset `i`'s centre in millimetres from the first voxel's, (z, y, x), in a grid of
/// `dims` with `spacing` (mm per index step along each axis).
pub fn position_mm(i: usize, [_, ny, nx]: [usize; 3], spacing: crate::Vec3) -> crate::Vec3 {
    [(i / (ny * nx)) as f64 * spacing[0], ((i / nx) % ny) as f64 * spacing[1], (i % nx) as f64 * spacing[2]]
}

/// The up to six face neighbours of voxel offset `i` in a grid of `dims` (z, y, x).
pub fn face_neighbours(i: usize, [nz, ny, nx]: [usize; 3]) -> impl Iterator<Item = usize> {
    let (z, y, x) = (i / (ny * nx), (i / nx) % ny, i % nx);
    let plane = ny * nx;
    [
        (x > 0).then(|| i - 1),
        (x + 1 < nx).then(|| i + 1),
        (y > 0).then(|| i - nx),
        (y + 1 < ny).then(|| i + nx),
        (z > 0).then(|| i - plane),
        (z + 1 < nz).then(|| i + plane),
    ]
    .into_iter()
    .flatten()
}

/// Clears, in one slice (`ny` rows of `nx`), every set pixel 4-connected to the slice border:
/// in an axial CT slice, the air around the patient.
pub fn clear_border_connected(slice: &mut [bool], ny: usize, nx: usize) {
    if slice.len() != ny * nx || slice.is_empty() {
        return;
    }
    let mut queue: VecDeque<usize> = border(ny, nx).filter(|&i| slice[i]).collect();
    for &i in &queue {
        slice[i] = false;
    }
    while let Some(i) = queue.pop_front() {
        for j in pixel_neighbours(i, ny, nx) {
            if slice[j] {
                slice[j] = false;
                queue.push_back(j);
            }
        }
    }
}

/// Sets, in one slice, every unset pixel not 4-connected to the border through unset pixels:
/// the holes (vessels, nodules) inside a lung's cross-section.
pub fn fill_holes(slice: &mut [bool], ny: usize, nx: usize) {
    let mut outside: Vec<bool> = slice.iter().map(|s| !s).collect();
    let holes: Vec<bool> = {
        let before = outside.clone();
        clear_border_connected(&mut outside, ny, nx);
        // What stayed set was unset, yet not reachable from the border.
        before.iter().zip(&outside).map(|(b, o)| *b && *o).collect()
    };
    for (s, h) in slice.iter_mut().zip(holes) {
        *s |= h;
    }
}

fn border(ny: usize, nx: usize) -> impl Iterator<Item = usize> {
    let rows = (0..nx).flat_map(move |x| [x, (ny - 1) * nx + x]);
    let cols = (0..ny).flat_map(move |y| [y * nx, y * nx + nx - 1]);
    rows.chain(cols)
}

fn pixel_neighbours(i: usize, ny: usize, nx: usize) -> impl Iterator<Item = usize> {
    let (y, x) = (i / nx, i % nx);
    [(x > 0).then(|| i - 1), (x + 1 < nx).then(|| i + 1), (y > 0).then(|| i - nx), (y + 1 < ny).then(|| i + nx)]
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_voxel_offset_is_placed_along_z_y_x() {
        // Offset 2*12 + 1*4 + 3 in a 3x3x4 grid is voxel (z 2, y 1, x 3).
        assert_eq!(position_mm(2 * 12 + 4 + 3, [3, 3, 4], [2.5, 0.5, 0.75]), [5.0, 0.5, 2.25]);
        assert_eq!(position_mm(0, [3, 3, 4], [2.5, 0.5, 0.75]), [0.0; 3]);
    }

    fn grid(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let nx = rows[0].len();
        (rows.iter().flat_map(|r| r.bytes().map(|b| b == b'#')).collect(), rows.len(), nx)
    }

    #[test]
    fn components_are_face_connected_and_sized() {
        // Two slices: a 2-voxel column joined through z, a lone voxel, a diagonal pair (2 components).
        let (a, ny, nx) = grid(&["#..#", "....", ".#.."]);
        let (b, _, _) = grid(&["#...", "..#.", "...."]);
        let mask: Vec<bool> = a.into_iter().chain(b).collect();
        let c = label_components(&mask, [2, ny, nx]);
        let mut sizes: Vec<usize> = c.by_size().iter().map(|&id| c.sizes[id as usize]).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [1, 1, 1, 2]);
        assert_eq!(c.labels[0], c.labels[ny * nx], "joined through z");
        assert_eq!(c.select(|id| c.sizes[id as usize] == 2).iter().filter(|m| **m).count(), 2);
        assert!(label_components(&mask, [3, ny, nx]).sizes.len() == 1, "wrong dims: empty");
    }

    #[test]
    fn border_air_is_cleared_and_enclosed_air_kept() {
        // Air is '#': the ring around the "patient" touches the border, the pocket inside does not.
        let (mut s, ny, nx) = grid(&["######", "#....#", "#.##.#", "#....#", "######"]);
        clear_border_connected(&mut s, ny, nx);
        let (want, _, _) = grid(&["......", "......", "..##..", "......", "......"]);
        assert_eq!(s, want);
        let (mut s, ny, nx) = grid(&["......", ".####.", ".#..#.", ".####.", "......"]);
        let before = s.clone();
        clear_border_connected(&mut s, ny, nx);
        assert_eq!(s, before, "nothing set touches the border");
    }

    #[test]
    fn holes_are_filled_but_bays_are_not() {
        let (mut s, ny, nx) = grid(&["......", ".####.", ".#..#.", ".####.", ".#..#.", ".##.#.", "......"]);
        fill_holes(&mut s, ny, nx);
        let (want, _, _) = grid(&["......", ".####.", ".####.", ".####.", ".#..#.", ".##.#.", "......"]);
        assert_eq!(s, want, "the closed pocket fills; the bay open at the bottom does not");
    }
}
