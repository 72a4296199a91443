fn main() {
    vitals::describe_counter!("bytes_sent_total", "Bytes written", vitals::Unit::Bytes);
}
