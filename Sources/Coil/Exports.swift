@_exported import CoilCore
