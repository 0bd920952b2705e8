"""The exported model: ``export`` writes the ONNX file (fp32, fp16, int8) with its metadata and
checks it (``verify`` on ``sample_data``); ``exported`` reads it back; ``runtime`` (onnxruntime)
and ``openvino`` run it; ``graph`` and ``quantize`` are the graph helpers the export uses."""
