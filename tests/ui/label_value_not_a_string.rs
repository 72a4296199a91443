fn main() {
    vitals::counter!("jobs_total", "attempt" => 3).inc();
}
