//! Parsing of human-friendly counts on the command line: `1048576`, `2^20`, `64M`, `1G`, `100_000`.

/// Parses a count: digits (underscores allowed), an optional K/M/G suffix (powers of 1000 by
/// default, Ki/Mi/Gi for powers of 1024), or `2^N`.
pub fn parse_count(text: &str) -> Result<u64, String> {
    let t = text.trim().replace('_', "");
    let bad = || format!("'{text}' is not a count (examples: 1048576, 2^20, 64M, 1Gi)");
    if let Some(exp) = t.strip_prefix("2^") {
        let e: u32 = exp.parse().map_err(|_| bad())?;
        return 1u64.checked_shl(e).filter(|_| e < 64).ok_or_else(bad);
    }
    let (digits, mult) = match t.find(|c: char| !c.is_ascii_digit()) {
        None => (t.as_str(), 1u64),
        Some(pos) => {
            let mult = match &t[pos..] {
                "K" | "k" => 1_000,
                "M" => 1_000_000,
                "G" => 1_000_000_000,
                "Ki" => 1 << 10,
                "Mi" => 1 << 20,
                "Gi" => 1 << 30,
                _ => return Err(bad()),
            };
            (&t[..pos], mult)
        }
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(mult).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::parse_count;

    #[test]
    fn counts() {
        assert_eq!(parse_count("1048576"), Ok(1 << 20));
        assert_eq!(parse_count("2^20"), Ok(1 << 20));
        assert_eq!(parse_count("64M"), Ok(64_000_000));
        assert_eq!(parse_count("1Gi"), Ok(1 << 30));
        assert_eq!(parse_count("100_000"), Ok(100_000));
        assert!(parse_count("2^64").is_err());
        assert!(parse_count("12Q").is_err());
        assert!(parse_count("").is_err());
        assert!(parse_count("99999999999999999999").is_err());
    }
}
