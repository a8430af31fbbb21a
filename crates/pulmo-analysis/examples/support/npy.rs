// NumPy .npy files (format version 1.0, little-endian, C order) for the training-data
// examples; the Python training scripts load them with numpy.load.

use std::io::Write;
use std::path::Path;

fn npy_header(shape: &[usize], descr: &str) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + dict + newline, padded to a multiple of 64.
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

pub fn write_npy(path: &Path, data: &[f32], shape: &[usize], descr: &str) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(&npy_header(shape, descr))?;
    for v in data {
        f.write_all(&v.to_le_bytes())?;
    }
    f.flush()
}

pub fn write_npy_u8(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(&npy_header(&[data.len()], "|u1"))?;
    f.write_all(data)
}
