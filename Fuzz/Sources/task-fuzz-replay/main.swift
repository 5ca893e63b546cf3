#if canImport(Glibc)
import Glibc
#endif
import TaskFuzzing

// Replays every file in the given directories (or files) through TaskProgram, without libFuzzer:
// a quick check that the corpus still passes, usable in any build.
var files: [String] = []
for path in CommandLine.arguments.dropFirst() {
    if let dir = opendir(path) {
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if !name.hasPrefix(".") { files.append(path + "/" + name) }
        }
        closedir(dir)
    } else {
        files.append(path)
    }
}
var total = 0
for file in files.sorted() {
    guard let handle = fopen(file, "rb") else { print("cannot open \(file)"); exit(2) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, handle)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    fclose(handle)
    bytes.withUnsafeBufferPointer { TaskProgram.run($0) }
    total += 1
}
print("replayed \(total) inputs, all invariants held")
