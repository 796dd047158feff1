//! What every scenario reports: the machine, latency percentiles, result
//! lines with their targets, and the Markdown table `all` writes.

use std::time::Duration;

/// One measured value of a scenario, with the product's target for it.
#[derive(Debug, Clone)]
pub struct Metric {
    pub scenario: &'static str,
    pub name: String,
    pub target: String,
    pub measured: String,
    /// `None` when the value has no target (context only).
    pub met: Option<bool>,
}

impl Metric {
    pub fn new(
        scenario: &'static str,
        name: impl Into<String>,
        target: impl Into<String>,
        measured: impl Into<String>,
        met: Option<bool>,
    ) -> Self {
        Self { scenario, name: name.into(), target: target.into(), measured: measured.into(), met }
    }

    /// A value shown for context, without a target.
    pub fn info(scenario: &'static str, name: impl Into<String>, measured: impl Into<String>) -> Self {
        Self::new(scenario, name, "-", measured, None)
    }
}

/// Prints a scenario's result block.
pub fn print_block(scenario: &str, metrics: &[Metric]) {
    println!("\n=== {scenario} ===");
    for m in metrics {
        let verdict = match m.met {
            Some(true) => "MET",
            Some(false) => "MISSED",
            None => "",
        };
        println!("  {:<34} {:>22}   target {:<18} {verdict}", m.name, m.measured, m.target);
    }
}

/// The Markdown table of all results.
pub fn markdown(machine: &str, metrics: &[Metric]) -> String {
    let mut out = format!("{machine}\n\n| scenario | metric | target | measured | met |\n|---|---|---|---|---|\n");
    for m in metrics {
        let met = match m.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        out.push_str(&format!("| {} | {} | {} | {} | {} |\n", m.scenario, m.name, m.target, m.measured, met));
    }
    out
}

/// The machine and the date, from /proc and the clock.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown CPU")
        .to_string();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = kb_field(&meminfo, "MemTotal:").unwrap_or(0);
    let date = jiff::Zoned::now().strftime("%Y-%m-%d %H:%M %Z").to_string();
    format!(
        "Machine: {model}, {cpus} CPUs (client and hub share them), {:.1} GiB RAM. Date: {date}.",
        mem_kb as f64 / 1024.0 / 1024.0
    )
}

/// A `Name:   123 kB` field of a /proc status-like file, in kB.
pub fn kb_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse().ok()
}

/// Percentiles of a set of durations.
pub struct Percentiles {
    sorted: Vec<Duration>,
}

impl Percentiles {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The `p`-th percentile (nearest rank), zero when there are no samples.
    pub fn at(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A rate with thousands separators, e.g. `12,345/s`.
pub fn rate(count: usize, elapsed: Duration) -> (f64, String) {
    let r = count as f64 / elapsed.as_secs_f64();
    (r, format!("{}/s", thousands(r.round() as u64)))
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
