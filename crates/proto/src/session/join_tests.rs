use super::*;

const OPENER: [u8; 32] = [0x11; 32];
const OTHER: [u8; 32] = [0x22; 32];
const SNI: Option<&str> = Some("ferry.example.com");

fn gate(streams_max: u16) -> JoinGate {
    JoinGate::new(streams_max, OPENER, SNI.map(str::to_string))
}

#[test]
fn the_openers_client_joins_a_free_stream() {
    let mut gate = gate(4);
    assert_eq!(gate.handle_join(1, &OPENER, SNI), Ok(StreamId(1)));
    assert_eq!(gate.handle_join(3, &OPENER, SNI), Ok(StreamId(3)));
    assert_eq!(gate.joined(), 2);
}

#[test]
fn a_join_after_close_is_late() {
    let mut gate = gate(4);
    assert_eq!(gate.handle_join(1, &OPENER, SNI), Ok(StreamId(1)));
    gate.close();
    let refusal = gate.handle_join(2, &OPENER, SNI).unwrap_err();
    assert_eq!(refusal, JoinRefusal::Closed);
    assert_eq!(refusal.reason(), RefuseReason::JoinClosed);
    assert!(gate.is_closed());
    assert_eq!(gate.joined(), 1, "a refused join is not counted");
}

#[test]
fn a_stream_number_joins_once() {
    let mut gate = gate(4);
    assert_eq!(gate.handle_join(2, &OPENER, SNI), Ok(StreamId(2)));
    let twice = gate.handle_join(2, &OPENER, SNI).unwrap_err();
    assert_eq!(twice, JoinRefusal::Taken { stream: 2 });
    assert_eq!(twice.reason(), RefuseReason::StreamTaken);
    assert_eq!(gate.joined(), 1, "the refused second join is not counted");
}

#[test]
fn another_client_or_server_name_reads_as_an_unknown_session() {
    let mut gate = gate(4);
    let identity = gate.handle_join(1, &OTHER, SNI).unwrap_err();
    assert_eq!(identity, JoinRefusal::OtherIdentity);
    let sni = gate
        .handle_join(1, &OPENER, Some("other.example.com"))
        .unwrap_err();
    assert_eq!(sni, JoinRefusal::OtherSni);
    let no_sni = gate.handle_join(1, &OPENER, None).unwrap_err();
    assert_eq!(no_sni, JoinRefusal::OtherSni);
    for refusal in [&identity, &sni, &no_sni] {
        assert_eq!(refusal.reason(), RefuseReason::UnknownSession);
        // The peer learns nothing more than for a key no session has.
        assert_eq!(refusal.peer_message(), UNKNOWN_SESSION_MESSAGE);
    }
    assert!(identity.to_string().contains("client certificate"));
    assert_eq!(gate.joined(), 0);
    // The identity is checked before anything else, also once the session is closing.
    gate.close();
    assert_eq!(
        gate.handle_join(9, &OTHER, SNI),
        Err(JoinRefusal::OtherIdentity)
    );
    // The stream the impostor asked for stays free for the opener (before the close).
    let mut fresh = self::gate(4);
    let _ = fresh.handle_join(1, &OTHER, SNI);
    assert_eq!(fresh.handle_join(1, &OPENER, SNI), Ok(StreamId(1)));
}

#[test]
fn a_gate_without_sni_takes_only_joins_without_sni() {
    let mut gate = JoinGate::new(4, OPENER, None);
    assert_eq!(
        gate.handle_join(1, &OPENER, Some("x")),
        Err(JoinRefusal::OtherSni)
    );
    assert_eq!(gate.handle_join(1, &OPENER, None), Ok(StreamId(1)));
}

#[test]
fn stream_zero_is_the_opener_and_cannot_be_joined() {
    let mut gate = gate(4);
    let refusal = gate.handle_join(0, &OPENER, SNI).unwrap_err();
    assert_eq!(refusal, JoinRefusal::Taken { stream: 0 });
    assert_eq!(refusal.reason(), RefuseReason::StreamTaken);
    assert!(refusal.to_string().contains("numbered from 1"), "{refusal}");
}

#[test]
fn a_stream_at_or_over_streams_max_is_too_many() {
    let mut gate = gate(4);
    for stream in [4, 5, u16::MAX] {
        let refusal = gate.handle_join(stream, &OPENER, SNI).unwrap_err();
        assert_eq!(
            refusal,
            JoinRefusal::OverLimit {
                stream,
                streams_max: 4
            }
        );
        assert_eq!(refusal.reason(), RefuseReason::TooManyStreams);
        assert!(refusal.peer_message().contains("limit of 4"), "{refusal}");
    }
    assert_eq!(gate.handle_join(3, &OPENER, SNI), Ok(StreamId(3)));
    // A session of one stream takes no joins at all.
    let mut single = self::gate(1);
    assert_eq!(
        single.handle_join(1, &OPENER, SNI).map_err(|r| r.reason()),
        Err(RefuseReason::TooManyStreams)
    );
}
