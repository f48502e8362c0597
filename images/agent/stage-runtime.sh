#!/bin/sh
# Runs in the agent image's build stage: copies the GStreamer plugins the agent uses, the plugin
# scanner, and every shared library they load (as ldd resolves them) into /staging, so the runtime
# stage gets exactly these and none of the packages' other dependencies (GTK, Mesa, LLVM, which
# plugins-bad pulls in and the agent never loads: 690 MB against about 200).
set -eu
arch=x86_64-linux-gnu
plugin_dir=/usr/lib/$arch/gstreamer-1.0
# core and base: queue, capsfilter, appsrc/appsink, videoscale, audioconvert, opus, test sources
# (the encoder probe); good: rtp payloaders, rtpbin, vpx, pulsesrc; x: ximagesrc; ugly: x264;
# bad: webrtcbin and its dtls/srtp/sctp, h264parse, nvh264enc (nvcodec), vah264enc (va); nice: ICE.
plugins="coreelements app videoconvertscale audioconvert audioresample opus videotestsrc audiotestsrc
  rtp rtpmanager vpx pulseaudio ximagesrc x264
  webrtc dtls srtp sctp videoparsersbad nvcodec va rtpmanagerbad nice"
files="/usr/lib/$arch/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner"
# Loaded with dlopen, so ldd does not list them: NSS's software token (libsrtp2 does its crypto
# through NSS; without it SRTP fails to initialise, "err: 5").
for f in libsoftokn3.so libsoftokn3.chk libfreebl3.so libfreebl3.chk libfreeblpriv3.so libfreeblpriv3.chk; do
  files="$files /usr/lib/$arch/$f"
done
for p in $plugins; do
  f="$plugin_dir/libgst$p.so"
  [ -f "$f" ] || { echo "stage-runtime: missing plugin $f" >&2; exit 1; }
  files="$files $f"
done
# Paths through the merged-/usr symlinks (/lib -> usr/lib) are written by their real folder, or
# the copy would replace those symlinks with folders. Files the base already has are left out.
canonical() { echo "$(readlink -f "$(dirname "$1")")/$(basename "$1")"; }
keep() {
  src=$(canonical "$1")
  grep -qxF "$src" /base-files.txt && return 0
  mkdir -p "/staging$(dirname "$src")"
  [ -e "/staging$src" ] || cp -a "$src" "/staging$src"
  target=$(readlink -f "$src")
  [ "$target" = "$src" ] || keep "$target"
}
for f in $files; do
  keep "$f"
  case "$f" in *.chk) continue ;; esac
  # Every library the file needs, by the path the loader found it at; a missing one fails here.
  if ldd "$f" | grep -q 'not found'; then ldd "$f" | grep 'not found' >&2; exit 1; fi
  for lib in $(ldd "$f" | awk '/=> \// { print $3 }'); do keep "$lib"; done
done
