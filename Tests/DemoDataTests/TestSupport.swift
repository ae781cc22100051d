@_exported import TestSupport      // TemporaryFolder
