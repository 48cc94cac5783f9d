import Foundation
import HubServer
import HubTestSupport
import Testing

@Suite("Configuration: file, environment, flags")
struct ConfigurationTests {
    @Test("flags beat the environment, which beats the file, which beats the defaults")
    func layering() throws {
        let file = ["listen": "0.0.0.0:1", "log-level": "debug", "synchronous": "full"]
        let env = ["HUB_LISTEN": "127.0.0.1:2", "HUB_LOG_LEVEL": "warning"]
        let config = try HubConfiguration.resolve(flags: ["listen": "127.0.0.1:3"], environment: env, file: file)
        #expect(config.listenPort == 3 && config.logLevel.value == .warning && config.synchronous == .full && config.auth == .tokens)
    }

    @Test("event loops follow the CPU affinity mask: the Cpus_allowed line is counted bit by bit")
    func cpuAffinity() {
        #expect(EventLoopSizing.cpuCount(statusText: "Name:\thubd\nCpus_allowed:\t1\nCpus_allowed_list:\t0\n") == 1)
        #expect(EventLoopSizing.cpuCount(statusText: "Cpus_allowed:\tff,00000003\n") == 10)
        #expect(EventLoopSizing.cpuCount(statusText: "Cpus_allowed:\tzz\n") == nil)
        #expect(EventLoopSizing.cpuCount(statusText: "Name:\thubd\n") == nil)
    }

    @Test("the shipped etc/hub.yaml parses, and every key in it is an option")
    func shippedFile() throws {
        let path = packageRoot.appendingPathComponent("etc/hub.yaml").path
        let values = try ConfigurationFile.load(path: path)
        let documented = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            .compactMap { line in line.first?.isLetter == true ? line.split(separator: ":").first.map(String.init) : nil }
        #expect(Set(documented) == Set(HubConfiguration.optionNames), "the shipped file documents every option")
        let config = try HubConfiguration.resolve(flags: [:], environment: [:], file: values)
        #expect(config.listenHost == "0.0.0.0" && config.dataDirectory == "/var/lib/eventhub")
    }

    @Test("--print-config output reads back as the same configuration")
    func roundTrip() throws {
        let original = try HubConfiguration.resolve(flags: ["long-poll-timeout": "1500ms", "rate-limit-address": "0"], environment: [:])
        let text = original.effective.map { "\($0.key): \"\($0.value)\"" }.joined(separator: "\n")
        let again = try HubConfiguration.resolve(flags: [:], environment: [:], file: ConfigurationFile.parse(text, source: "printed"))
        #expect(again.effective == original.effective)
    }

    @Test("the PostgreSQL store: its options go together, the URL is checked, and its password is never shown")
    func postgresOptions() throws {
        func refusal(_ flags: [String: String], _ env: [String: String] = [:]) -> String {
            do {
                _ = try HubConfiguration.resolve(flags: flags, environment: env)
                return ""
            } catch {
                return error.description
            }
        }
        #expect(refusal(["store": "postgres"]).contains("needs postgres-url"))
        #expect(refusal(["store": "mysql"]).contains("is not sqlite or postgres"))
        #expect(refusal(["postgres-url": "postgres://hub@db/hub"]).contains("need store = postgres"))
        #expect(refusal(["store": "postgres", "postgres-url": "mysql://db/hub"]).contains("must look like postgres://"))
        #expect(refusal(["store": "postgres", "postgres-url": "postgres://db/hub"]).contains("names no user"))
        #expect(refusal(["store": "postgres", "postgres-url": "postgres://hub@db/"]).contains("names no database"))
        #expect(refusal(["store": "postgres", "postgres-url": "postgres://hub@db/hub?sslmode=sometimes"]).contains("sslmode must be one of"))
        #expect(refusal(["store": "postgres", "postgres-url": "postgres://hub@db/hub?timeout=3"]).contains("unknown parameter 'timeout'"))
        #expect(refusal(["store": "postgres", "postgres-url": "postgres://hub@db/hub", "postgres-pool-size": "0"]).contains("connection count"))
        #expect(refusal(["store": "postgres", "postgres-url": "postgres://hub@db/hub", "postgres-statement-timeout": "1ms"]).contains("100ms"))

        let config = try HubConfiguration.resolve(flags: ["store": "postgres", "postgres-pool-size": "3"],
                                                  environment: ["HUB_POSTGRES_URL": "postgres://hub:s3cret@db.example:6432/events?sslmode=verify-full"])
        let settings = try #require(config.postgres)
        #expect(settings.host == "db.example" && settings.port == 6432 && settings.database == "events" && settings.username == "hub")
        #expect(settings.password == "s3cret" && settings.tls == .verifyFull && settings.poolSize == 3)
        #expect(config.effective["postgres-url"] == "postgres://hub:***@db.example:6432/events?sslmode=verify-full")
        #expect(!config.effective.values.contains { $0.contains("s3cret") }, "the password appears nowhere in the effective configuration")

        let directory = try TemporaryDirectory()
        try "from-file\n".write(toFile: directory.path + "/pw", atomically: true, encoding: .utf8)
        let fromFile = try HubConfiguration.resolve(flags: ["store": "postgres", "postgres-url": "postgres://hub@127.0.0.1/hub?sslmode=disable",
                                                            "postgres-password-file": directory.path + "/pw"], environment: [:])
        #expect(fromFile.postgres?.password == "from-file")
    }

    @Test("bad files and values are refused with the key and line")
    func errors() {
        #expect(throws: ConfigurationError.self) { try ConfigurationFile.parse("lisen: 1\n", source: "f") }
        #expect(throws: ConfigurationError.self) { try ConfigurationFile.parse("- a\n- b\n", source: "f") }
        #expect(throws: ConfigurationError.self) { try ConfigurationFile.parse("listen: [1, 2]\n", source: "f") }
        #expect(throws: ConfigurationError.self) { try ConfigurationFile.parse("listen: \"unterminated\n", source: "f") }
        #expect(throws: ConfigurationError.self) { try HubConfiguration.resolve(flags: [:], environment: ["HUB_AUTH": "maybe"]) }
        #expect(throws: ConfigurationError.self) { try HubConfiguration.resolve(flags: ["long-poll-timeout": "soon"], environment: [:]) }
        #expect(throws: ConfigurationError.self) { try HubConfiguration.resolve(flags: ["listen": "nohost"], environment: [:]) }
        #expect((try? ConfigurationFile.parse("# only comments\n", source: "f")) == [:])
        do {
            _ = try ConfigurationFile.parse("listen: 1\nbogus: 2\n", source: "hub.yaml")
        } catch {
            #expect(error.description.contains("hub.yaml (line 2): unknown key 'bogus'"))
        }
    }

    @Test("hubd --check-config exits 78 on a bad file and 0 on a good one")
    func checkConfig() async throws {
        let directory = try TemporaryDirectory()
        let bad = directory.path + "/bad.yaml", good = directory.path + "/good.yaml"
        try "listen: nowhere\n".write(toFile: bad, atomically: true, encoding: .utf8)
        try "listen: 127.0.0.1:0\nauth: open\n".write(toFile: good, atomically: true, encoding: .utf8)
        let failing = try ChildProcess(HubdProcess.binary, ["--config", bad, "--check-config"])
        var output: [String] = []
        for await line in failing.lines() { output.append(line) }
        #expect(await failing.wait() == 78)
        #expect(output.joined().contains("listen"))
        let passing = try ChildProcess(HubdProcess.binary, ["--config", good, "--check-config"])
        for await _ in passing.lines() {}
        #expect(await passing.wait() == 0)
    }
}
