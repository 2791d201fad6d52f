#![no_main]
//! `pcr_blob::decode` never panics; a decoded single-bank blob re-encodes identically
//! up to padding bytes, so it must decode to the same values again.
use keylime_tpm::pcr_blob;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((sels, values)) = pcr_blob::decode(data)
        && let [sel] = sels.as_slice()
        && let Ok(again) = pcr_blob::encode(sel, &values)
    {
        assert_eq!(pcr_blob::decode(&again).ok(), Some((sels.clone(), values)));
    }
});
