import CFuzzDriver
import TaskFuzzing

// Every input is a program for TaskProgram; any invariant violation traps, which libFuzzer
// reports with the input that caused it.
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
_ = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    TaskProgram.run(UnsafeBufferPointer(start: data, count: size))
    return 0
}
