# The sipfw firmware package, frozen into a MicroPython image: bytecode, strings and
# constant objects then live in flash, not in the heap (docs/boards.md). Included by each
# board kind's manifest (board_configs/<board>/manifest.py); paths are relative to this file.
# It names exactly the modules `sipfw flash` puts on a board (host_tools/sipfw/build.py:
# sipua/ without _cpython.py, tests and build.HOST_ONLY); tests/host/test_boards_frozen.py keeps it so.
# main.py and boot.py are not frozen: they stay readable files on the board's filesystem,
# copied by `sipfw flash --frozen`.
package(
    "sipua",
    files=[
        "__init__.py", "account.py", "addr.py", "agent.py", "app.py", "atomic.py",
        "cmds.py", "compat.py", "config.py", "console.py", "dns/__init__.py",
        "dns/cache.py", "dns/locator.py", "dns/resolver.py", "dns/static.py", "dns/tcp.py",
        "dns/wire.py", "hal/__init__.py", "hal/audio.py", "hal/i2s.py", "hal/mcu.py",
        "hal/plain.py", "hal/srcaddr.py", "hal/tone.py",
        "hal/unix.py", "hal/wav.py", "hal/wifi.py", "log.py", "media/__init__.py",
        "media/ctl.py", "media/dtmf.py", "media/g711.py", "media/g711p.py", "media/g711v.py",
        "media/jbuf.py",
        "media/rtcp.py", "media/rtp.py", "names.py", "netio.py", "netwatch.py", "sched.py",
        "schedslow.py",
        "sip/__init__.py", "sip/auth.py", "sip/bye.py", "sip/call.py", "sip/callin.py",
        "sip/callout.py", "sip/ctrans.py", "sip/dgram.py", "sip/dialog.py",
        "sip/digest.py", "sip/guard.py", "sip/hdr.py", "sip/hedge.py", "sip/hold.py",
        "sip/invite.py", "sip/keepalive.py",
        "sip/ladder.py", "sip/md5.py", "sip/msg.py", "sip/msgtext.py", "sip/offer.py",
        "sip/reasons.py", "sip/reg.py", "sip/regdns.py", "sip/register.py",
        "sip/regextra.py", "sip/scan.py", "sip/sdp.py", "sip/servers.py", "sip/stack.py",
        "sip/stream.py", "sip/strans.py", "sip/tls.py", "sip/tpextra.py", "sip/transport.py",
        "sip/uas.py", "sip/uri.py",
        "startup.py", "upload.py",
    ],
    base_path="../firmware",
)
