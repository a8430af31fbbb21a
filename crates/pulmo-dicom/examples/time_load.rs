//! Times `load_ct_path` on one folder: `time_load DIR RUNS` prints one JSON line per run with
//! the wall time in seconds. Used by scripts/bench/load-ct, side by side with Python readers.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: time_load DIR RUNS")?);
    let runs: usize = args.next().unwrap_or_else(|| "1".into()).parse()?;
    for _ in 0..runs {
        let start = Instant::now();
        let ct = pulmo_dicom::load_ct_path(&dir)?;
        let seconds = start.elapsed().as_secs_f64();
        let dims = ct.volume.dims();
        println!("{{\"reader\":\"pulmo\",\"seconds\":{seconds:.4},\"dims\":[{},{},{}]}}", dims[0], dims[1], dims[2]);
    }
    Ok(())
}
