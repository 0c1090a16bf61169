//! Print the JSON analysis of a capture (development aid).
fn main() {
    let path = std::env::args().nth(1).expect("usage: dump FILE");
    let f = std::io::BufReader::new(std::fs::File::open(&path).expect("open"));
    match tcplab_trace::analyze(f, &path) {
        Ok(a) => println!("{:#}", tcplab_trace::render::json::to_value(&a)),
        Err(e) => eprintln!("error: {e}"),
    }
}
