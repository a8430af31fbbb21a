//! An RGB drawing surface with just what the summary page needs: filled rectangles, thick
//! lines and scaled 8x8 bitmap text (ASCII; anything else draws as '?').

use font8x8::{UnicodeFonts, BASIC_FONTS};

pub type Rgb = [u8; 3];

/// Pixels row by row, three bytes (R, G, B) each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, background: Rgb) -> Canvas {
        Canvas { width, height, rgb: background.repeat(width * height) }
    }

    /// Sets a pixel; points outside the canvas are ignored (lines and text may run off it).
    pub fn set(&mut self, x: i64, y: i64, colour: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = 3 * (y as usize * self.width + x as usize);
            self.rgb[i..i + 3].copy_from_slice(&colour);
        }
    }

    pub fn get(&self, x: usize, y: usize) -> Option<Rgb> {
        (x < self.width && y < self.height).then(|| {
            let i = 3 * (y * self.width + x);
            [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
        })
    }

    pub fn fill(&mut self, x: i64, y: i64, width: usize, height: usize, colour: Rgb) {
        for dy in 0..height as i64 {
            for dx in 0..width as i64 {
                self.set(x + dx, y + dy, colour);
            }
        }
    }

    /// A line `thickness` pixels wide between two points (pixel coordinates, may be fractional).
    pub fn line(&mut self, from: [f64; 2], to: [f64; 2], thickness: usize, colour: Rgb) {
        let steps = (to[0] - from[0]).abs().max((to[1] - from[1]).abs()).ceil().max(1.0) as usize;
        let half = thickness as i64 / 2;
        for k in 0..=steps {
            let t = k as f64 / steps as f64;
            let (x, y) = ((from[0] + t * (to[0] - from[0])).round() as i64, (from[1] + t * (to[1] - from[1])).round() as i64);
            self.fill(x - half, y - half, thickness, thickness, colour);
        }
    }

    /// Text with its top-left corner at (x, y), each glyph 8 x 8 pixels times `scale`.
    /// Returns the x just after the last glyph.
    pub fn text(&mut self, x: i64, y: i64, scale: usize, colour: Rgb, text: &str) -> i64 {
        let advance = 8 * scale as i64;
        for (k, c) in text.chars().enumerate() {
            let glyph = BASIC_FONTS.get(c).or_else(|| BASIC_FONTS.get('?')).unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        let (gx, gy) = (x + k as i64 * advance + col * scale as i64, y + row as i64 * scale as i64);
                        self.fill(gx, gy, scale, scale, colour);
                    }
                }
            }
        }
        x + text.chars().count() as i64 * advance
    }

    /// Copies `other` with its top-left corner at (x, y).
    pub fn paste(&mut self, x: i64, y: i64, other: &Canvas) {
        for oy in 0..other.height {
            for ox in 0..other.width {
                if let Some(c) = other.get(ox, oy) {
                    self.set(x + ox as i64, y + oy as i64, c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_and_clipping() {
        let mut c = Canvas::new(40, 20, [0, 0, 0]);
        let end = c.text(0, 0, 1, [255, 255, 255], "I");
        assert_eq!(end, 8);
        // The 8x8 'I' has ink in its middle columns and none in its first column.
        assert!((0..8).any(|y| c.get(3, y) == Some([255, 255, 255])));
        assert!((0..8).all(|y| c.get(0, y) == Some([0, 0, 0])));
        c.line([0.0, 15.0], [39.0, 15.0], 1, [9, 9, 9]);
        assert!((0..40).all(|x| c.get(x, 15) == Some([9, 9, 9])));
        c.line([-10.0, -10.0], [100.0, 100.0], 3, [1, 2, 3]); // runs off the canvas: no panic
        c.text(35, 18, 2, [1, 1, 1], "é?");
        assert_eq!(c.rgb.len(), 40 * 20 * 3);
    }
}
