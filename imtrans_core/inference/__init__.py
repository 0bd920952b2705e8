"""Running trained generators on volumes: ``models`` loads a run's G_CT or G_MR, ``translate``
turns volumes (and folders of them) into synthetic ones with a torch, onnxruntime or OpenVINO backend."""
