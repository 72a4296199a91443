fn main() {
    let _ = vitals::timed!("work_seconds");
}
