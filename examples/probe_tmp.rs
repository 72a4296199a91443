fn main() {
    let m = ["GET", "POST", "PUT", "DELETE"];
    let n = 100_000_000usize;
    let t = std::time::Instant::now();
    for i in 0..n {
        vitals::counter!("p_l", "method" => m[i & 3]).increment(1);
    }
    println!("{:.2} ns", t.elapsed().as_nanos() as f64 / n as f64);
}
