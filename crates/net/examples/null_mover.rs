//! A null mover: what a verified, encrypted whole-file transfer costs with nothing else.
//!
//! `send` reads files, hashes them with BLAKE3 and writes them into one TLS stream over
//! Ferry's own transport (the same mutual-TLS configs, ALPN, CONNECT tunnel and SNI);
//! `sink` accepts one connection, hashes what arrives, throws it away and answers with the
//! byte count and hash, which `send` checks. No protocol, no listing, no writes at the
//! target: what is left is read + hash + encrypt, the proxy and the router, decrypt + hash.
//! Both sides hash on a thread of their own beside the TLS task, as Ferry does, so both
//! cores are used. `benches/bench.py` (set `bound`) runs it against Ferry's large copy
//! through the same chain, to say how far Ferry is from this bound.
//!
//! ```text
//! null_mover sink --listen 127.0.0.1:PORT --tls-dir DIR
//! null_mover send --to HOST:PORT --server-name SNI --tls-dir DIR [--proxy URL] FILE...
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_net::{ProxyUrl, TlsDir};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Bytes a read and a TLS write carry (Ferry's data frame size).
const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the hashing thread and the TLS task.
const IN_FLIGHT: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(30);

type Error = Box<dyn std::error::Error + Send + Sync>;
/// `--name value` pairs, in order.
type Named = Vec<(String, String)>;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let result = match args.first().map(String::as_str) {
        Some("sink") => runtime.block_on(sink(&args[1..])),
        Some("send") => runtime.block_on(send(&args[1..])),
        _ => Err("usage: null_mover sink|send ... (see the file's header)".into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("null_mover: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--name value` pairs and the remaining positional arguments.
fn options(args: &[String]) -> Result<(Named, Vec<String>), Error> {
    let (mut named, mut rest) = (Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.strip_prefix("--") {
            Some(name) => {
                let value = it.next().ok_or(format!("--{name} needs a value"))?;
                named.push((name.to_string(), value.clone()));
            }
            None => rest.push(arg.clone()),
        }
    }
    Ok((named, rest))
}

fn option<'a>(named: &'a [(String, String)], name: &str) -> Option<&'a str> {
    named
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn required<'a>(named: &'a [(String, String)], name: &str) -> Result<&'a str, Error> {
    option(named, name).ok_or_else(|| format!("--{name} is required").into())
}

/// Accepts one connection, hashes everything it sends, answers `BYTES HEX`.
async fn sink(args: &[String]) -> Result<(), Error> {
    let (named, _) = options(args)?;
    let config = ferry_net::server_config(&TlsDir::new(Path::new(required(&named, "tls-dir")?)))?;
    let listener = ferry_net::listen(required(&named, "listen")?.parse()?)?;
    println!("listening {}", listener.local_addr()?);
    let (tcp, _) = listener.accept().await?;
    ferry_net::tune(&tcp)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let mut tls = ferry_net::tls_accept(&acceptor, tcp).await?;
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(IN_FLIGHT);
    let hashing = std::thread::spawn(move || {
        let mut hasher = blake3::Hasher::new();
        let mut total = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            hasher.update(&chunk);
            total += chunk.len() as u64;
        }
        (total, hasher.finalize())
    });
    // A TLS read returns at most one record (16 KiB): fill each chunk from several,
    // into spare capacity (nothing zeroed), and hand whole chunks to the hashing thread.
    loop {
        let mut buf = Vec::with_capacity(CHUNK);
        while buf.len() < CHUNK {
            if tls.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        let last = buf.len() < CHUNK;
        if !buf.is_empty() {
            tx.send(buf).await?;
        }
        if last {
            break;
        }
    }
    drop(tx);
    let (total, hash) = hashing.join().map_err(|_| "the hashing thread panicked")?;
    tls.write_all(format!("{total} {}\n", hash.to_hex()).as_bytes())
        .await?;
    tls.shutdown().await?;
    Ok(())
}

/// Sends the files' bytes, one stream, and checks the sink's count and hash.
async fn send(args: &[String]) -> Result<(), Error> {
    let (named, files) = options(args)?;
    let files: Vec<PathBuf> = files.into_iter().map(PathBuf::from).collect();
    let config = ferry_net::client_config(&TlsDir::new(Path::new(required(&named, "tls-dir")?)))?;
    let name = ferry_net::server_name(required(&named, "server-name")?)?;
    let (host, port) = required(&named, "to")?
        .rsplit_once(':')
        .ok_or("--to is HOST:PORT")?;
    let port: u16 = port.parse()?;
    let tcp = match option(&named, "proxy") {
        Some(url) => {
            let proxy = ProxyUrl::parse(url)?;
            let tcp = ferry_net::connect_proxy(&proxy, TIMEOUT).await?;
            ferry_net::tune(&tcp)?;
            ferry_net::connect_tunnel(tcp, &proxy, host, port).await?
        }
        None => {
            let tcp = ferry_net::connect(host, port, TIMEOUT).await?;
            ferry_net::tune(&tcp)?;
            tcp
        }
    };
    let mut tls = ferry_net::tls_connect(config, name, tcp).await?;

    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(IN_FLIGHT);
    let reading = std::thread::spawn(move || -> Result<(u64, blake3::Hash), String> {
        let mut hasher = blake3::Hasher::new();
        let mut total = 0u64;
        for path in &files {
            let shown = path.display();
            let mut file = std::fs::File::open(path).map_err(|e| format!("{shown}: {e}"))?;
            loop {
                let mut buf = Vec::with_capacity(CHUNK);
                let n = (&mut file)
                    .take(CHUNK as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| format!("{shown}: {e}"))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf);
                total += n as u64;
                if tx.blocking_send(buf).is_err() {
                    return Err("the connection ended early".into());
                }
            }
        }
        Ok((total, hasher.finalize()))
    });
    while let Some(chunk) = rx.recv().await {
        tls.write_all(&chunk).await?;
    }
    let (total, hash) = reading
        .join()
        .map_err(|_| "the reading thread panicked")??;
    tls.flush().await?;
    // close_notify ends the sink's stream; its answer still comes back.
    tls.get_mut().1.send_close_notify();
    tls.flush().await?;
    let mut answer = String::new();
    BufReader::new(tls).read_line(&mut answer).await?;
    let expected = format!("{total} {}", hash.to_hex());
    if answer.trim_end() != expected {
        return Err(format!("the sink got {:?}, sent {expected:?}", answer.trim_end()).into());
    }
    println!("ok {total} bytes");
    Ok(())
}
