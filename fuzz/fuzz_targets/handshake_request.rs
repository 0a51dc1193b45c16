//! Arbitrary bytes as an upgrade request: parsing, RFC 6455 validation and
//! permessage-deflate negotiation never panic, and every refusal is a 4xx.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volley::proto::deflate::{Config, negotiate};
use volley::proto::handshake::{HeadLimits, parse_request, validate_upgrade};
use volley::proto::http::write_refusal;

fuzz_target!(|data: &[u8]| {
    let limits = HeadLimits { max_bytes: 4096, max_headers: 32 };
    match parse_request(data, limits) {
        Ok(Some(req)) => {
            assert!(req.head_len <= data.len() && req.head_len <= limits.max_bytes);
            match validate_upgrade(&req) {
                Ok(up) => assert_eq!(up.accept.len(), 28),
                Err(r) => {
                    assert!((400..500).contains(&r.status));
                    let mut out = Vec::new();
                    write_refusal(&mut out, r);
                }
            }
            let offers = req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
                .filter_map(|(_, v)| std::str::from_utf8(v).ok());
            if let Some(n) = negotiate(offers, &Config::default()) {
                assert!(n.header.starts_with("permessage-deflate"));
                assert!((8..=15).contains(&n.agreed.server_window_bits));
            }
        }
        Ok(None) => assert!(data.len() < limits.max_bytes),
        Err(r) => assert!(r.status == 400 || r.status == 431),
    }
});
