use std::time::Duration;

use super::*;

#[test]
fn auto_follows_the_round_trip_the_cores_and_the_servers_limit() {
    let ms = Duration::from_millis;
    // (rtt, cores, streams_max) -> streams
    let cases = [
        (ms(0), 1, 8, 1),  // LAN, one core: one stream
        (ms(1), 2, 8, 2),  // LAN, two cores: a second spreads per-file work
        (ms(1), 16, 8, 2), // more cores do not add LAN streams
        (ms(2), 1, 8, 4),  // 2 ms is no longer a LAN
        (ms(19), 2, 8, 4), // a metro link
        (ms(20), 1, 8, 8), // a WAN: window-bound streams
        (ms(50), 2, 8, 8),
        (ms(50), 2, 3, 3), // never over the server's limit
        (ms(50), 2, 1, 1), // a server that takes no joins
        (ms(0), 2, 1, 1),
        (ms(500), 64, 16, 8),
        (ms(1), 2, 0, 1), // a limit of 0 never happens (refused at Welcome): still 1
    ];
    for (rtt, cores, max, expected) in cases {
        assert_eq!(
            auto(rtt, cores, max),
            expected,
            "rtt {rtt:?}, cores {cores}, max {max}"
        );
    }
}

#[test]
fn auto_for_bulk_follows_the_round_trip_only() {
    let ms = Duration::from_millis;
    // (rtt, streams_max) -> streams: a LAN's window is no bound, so one stream.
    for (rtt, max, expected) in [
        (ms(0), 8, 1),
        (ms(1), 16, 1),
        (ms(2), 8, 4),
        (ms(25), 8, 8),
        (ms(50), 3, 3),
        (ms(50), 0, 1),
    ] {
        assert_eq!(auto_bulk(rtt, max), expected, "rtt {rtt:?}, max {max}");
    }
}

#[test]
fn streams_parse_as_auto_or_one_to_sixteen() {
    assert_eq!(Streams::parse("auto"), Ok(Streams::Auto));
    assert_eq!(Streams::parse("AUTO"), Ok(Streams::Auto));
    assert_eq!(Streams::parse("1"), Ok(Streams::Fixed(1)));
    assert_eq!(Streams::parse("16"), Ok(Streams::Fixed(16)));
    for bad in ["0", "17", "-1", "", "four", "2.5"] {
        let error = Streams::parse(bad).expect_err(bad);
        assert!(error.contains("auto or 1 to 16"), "{error}");
    }
}

#[test]
fn auto_and_two_or_more_streams_ask_for_joins() {
    assert!(!Streams::Fixed(1).asks_for_joins());
    assert!(Streams::Fixed(2).asks_for_joins());
    assert!(Streams::Fixed(16).asks_for_joins());
    // auto decides after Welcome, so its Hello must allow joins.
    assert!(Streams::Auto.asks_for_joins());
}
