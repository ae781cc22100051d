import CTensorKernels

// Scalar forms of the kernels' math (CTensorKernels): one lane of the vector code, so a scalar and a
// vector result agree bit for bit, on every CPU and dispatch path.

/// GELU (erf form, PyTorch's default): x·Φ(x).
public func gelu(_ x: Float) -> Float { tinyshard_gelu(x) }

/// d GELU / dx = Φ(x) + x·φ(x).
public func geluDerivative(_ x: Float) -> Float { tinyshard_gelu_derivative(x) }

/// `exp(x)` with ~1 ulp error for x in [-87.3, 88.7] (range reduction by ln 2 and a degree-6
/// polynomial, the softmax kernels' exp); results below that range flush to 0.
func kernelExp(_ x: Float) -> Float { tinyshard_exp(x) }
