fn main() {
    vitals::describe_counter!("jobs_total", "jobs", "Jobs run", "extra");
}
