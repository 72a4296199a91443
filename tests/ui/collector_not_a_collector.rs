fn main() {
    let metrics = 42;
    vitals::histogram!(collector: metrics, "work_seconds").record(1.0);
}
