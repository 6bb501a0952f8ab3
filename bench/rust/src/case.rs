//! The measurement protocol of `bench/README.md`: every case is warmed up, then measured in
//! several chunks taken in turn (case A, case B, ..., then again), and each id reports the
//! median chunk's nanoseconds per operation as one JSON line on stdout.

use std::time::{Duration, Instant};

use serde::Serialize;

/// A benchmark that runs operations on demand and says how long their timed parts took.
///
/// One case may report several ids measured in the same operations, e.g. `totp/native/memory`
/// (the whole sign-in check) with its halves `totp-begin/...` and `totp-verify/...`.
pub trait Case {
    /// The ids it reports; [`Case::run`] returns one duration per id, in this order.
    fn ids(&self) -> Vec<String>;

    /// Runs `ops` operations (an even number, so alternations stay balanced) and returns the
    /// time spent in each id's timed region. Untimed set-up (signing, reading mail) may also
    /// happen here but is not counted.
    fn run(&mut self, ops: u64) -> Vec<Duration>;
}

/// How long to measure.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The wall time of one chunk of one case.
    pub chunk: Duration,
    /// Chunks per case; the median one is reported.
    pub chunks: usize,
}

impl Plan {
    /// 7 chunks of about 150 ms, or 30 ms with `--quick`.
    pub fn new(quick: bool) -> Plan {
        Plan { chunk: Duration::from_millis(if quick { 30 } else { 150 }), chunks: 7 }
    }
}

/// Warms up and measures `cases` (interleaved) and prints one line per id.
pub fn measure(cases: &mut [Box<dyn Case>], plan: Plan) {
    let mut sizes = Vec::with_capacity(cases.len());
    for case in cases.iter_mut() {
        eprintln!("warming up {}", case.ids()[0]);
        let ops = calibrate(case.as_mut(), plan.chunk);
        case.run(ops);
        sizes.push(ops);
    }
    // samples[case][id][chunk]: nanoseconds per operation.
    let mut samples: Vec<Vec<Vec<f64>>> = cases.iter().map(|c| vec![Vec::new(); c.ids().len()]).collect();
    for chunk in 1..=plan.chunks {
        eprintln!("chunk {chunk}/{}", plan.chunks);
        for ((case, &ops), samples) in cases.iter_mut().zip(&sizes).zip(&mut samples) {
            for (times, spent) in samples.iter_mut().zip(case.run(ops)) {
                times.push(spent.as_nanos() as f64 / ops as f64);
            }
        }
    }
    for ((case, &ops), samples) in cases.iter().zip(&sizes).zip(samples) {
        for (id, times) in case.ids().iter().zip(samples) {
            print_time(id, median(times), ops * plan.chunks as u64);
        }
    }
}

/// How many operations fill about one chunk of wall time (at least 2, always even). Doubles a
/// trial run until it takes half a chunk, which also warms the case up.
fn calibrate(case: &mut dyn Case, chunk: Duration) -> u64 {
    let mut ops = 2;
    loop {
        let started = Instant::now();
        case.run(ops);
        let wall = started.elapsed();
        if wall >= chunk / 2 {
            let scaled = ops as f64 * chunk.as_secs_f64() / wall.as_secs_f64();
            return (scaled / 2.0).round().max(1.0) as u64 * 2;
        }
        ops *= 2;
    }
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

/// A timed case's line: `{"case": ..., "ns": ..., "ops": ...}`.
#[derive(Serialize)]
struct TimeLine<'a> {
    /// The case id.
    case: &'a str,
    /// Nanoseconds per operation (the median chunk).
    ns: f64,
    /// Operations measured in all chunks.
    ops: u64,
}

/// Any other measure's line: `{"case": ..., "value": ..., "unit": ...}`.
#[derive(Serialize)]
struct ValueLine<'a, V> {
    /// The case id.
    case: &'a str,
    /// The measure.
    value: V,
    /// Its unit.
    unit: &'a str,
}

/// Prints a timed case (ns rounded to 0.1).
pub fn print_time(case: &str, ns: f64, ops: u64) {
    print_line(&TimeLine { case, ns: (ns * 10.0).round() / 10.0, ops });
}

/// Prints another measure (`bytes`, `ops/s`, ...).
pub fn print_value<V: Serialize>(case: &str, value: V, unit: &str) {
    print_line(&ValueLine { case, value, unit });
}

/// Prints one JSON line on stdout.
fn print_line<T: Serialize>(line: &T) {
    match serde_json::to_string(line) {
        Ok(json) => println!("{json}"),
        Err(e) => unreachable!("a protocol line always serialises: {e}"),
    }
}
