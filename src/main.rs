fn main() -> std::process::ExitCode {
    seal::cli::main()
}
