# Sourced by the scripts: point GStreamer at the plugin and presets of a build
# tree without installing anything.  Usage: . scripts/env.sh [BUILD_DIR]
_camrelay_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_camrelay_build=${1:-$_camrelay_root/build}
export GST_PLUGIN_PATH_1_0="$_camrelay_build/plugins${GST_PLUGIN_PATH_1_0:+:$GST_PLUGIN_PATH_1_0}"
export GST_PRESET_PATH="$_camrelay_root/gst-presets${GST_PRESET_PATH:+:$GST_PRESET_PATH}"
export GST_REGISTRY_1_0="$_camrelay_build/registry.bin"
unset _camrelay_root _camrelay_build
