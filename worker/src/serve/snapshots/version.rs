//! Snapshot version ids, as the SDK made them: 6 characters of `[0-9A-Z]`. Pure but for
//! the randomness, which comes from the caller.

/// Characters of a version id.
pub const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Length of a version id (36^6 ≈ 2.2e9 ids per tenant and app; a collision is
/// caught by the unique index and retried).
pub const LENGTH: usize = 6;

/// A version id from `random` (e.g. the 122 random bits of a UUID v4): base 36 digits
/// of the number, so every id is as likely as any other to within 1 in 2^90.
pub fn from_random(random: u128) -> String {
    let mut n = random;
    let mut id = String::with_capacity(LENGTH);
    for _ in 0..LENGTH {
        let digit = usize::try_from(n % 36).unwrap_or(0);
        id.push(char::from(ALPHABET[digit]));
        n /= 36;
    }
    id
}

/// A fresh random version id.
pub fn random() -> String {
    // UUID v4: 122 bits from the OS's generator; the 6 fixed bits are shifted out.
    from_random(uuid::Uuid::new_v4().as_u128() >> 6)
}

/// Whether `text` is a version id: anything else is a 404 without a query.
pub fn is_version(text: &str) -> bool {
    text.len() == LENGTH && text.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_six_characters_of_the_sdks_alphabet() {
        assert_eq!(from_random(0), "000000");
        assert_eq!(from_random(35), "Z00000");
        assert_eq!(from_random(36), "010000");
        for _ in 0..1000 {
            let id = random();
            assert!(is_version(&id), "{id}");
        }
    }

    #[test]
    fn random_ids_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| random()).collect();
        assert!(ids.len() > 990);
    }

    #[test]
    fn only_ids_of_the_alphabet_are_versions() {
        for bad in ["", "abcdef", "ABCDE", "ABCDEFG", "ABC$EF", "ABC.EF", "ÄBCDE"] {
            assert!(!is_version(bad), "{bad}");
        }
        assert!(is_version("0A9Z3Q"));
    }
}
