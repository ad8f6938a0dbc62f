//! Human-readable byte sizes, as `docker images` prints them.

/// Formats bytes with SI units (kB, MB, GB), matching docker's `SIZE` column.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else if value < 10.0 {
        format!("{value:.2}{}", UNITS[unit])
    } else if value < 100.0 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{value:.0}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn formats_like_docker() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(999), "999B");
        assert_eq!(human(1_000), "1.00kB");
        assert_eq!(human(1_234_567), "1.23MB");
        assert_eq!(human(45_600_000), "45.6MB");
        assert_eq!(human(7_000_000_000), "7.00GB");
        assert_eq!(human(123_000_000_000), "123GB");
    }
}
