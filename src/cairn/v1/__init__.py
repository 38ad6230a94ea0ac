"""Generated from proto/cairn/v1 by cairn.rpc.codegen; do not edit."""
