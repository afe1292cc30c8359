# termloom shell integration for zsh: OSC 133 marks (A prompt start, B prompt end, C command
# start, D;<exit> command end) and OSC 7 (working directory), plus a one-line state file for
# `termloom status` when $TERMLOOM_STATE_FILE is set. Written by termloom; it holds no user data.
# Sourcing it again is harmless: it replaces its own hooks and leaves everyone else's alone.
if [[ -o interactive ]]; then
    typeset -g _termloom_last=${_termloom_last:--}

    _termloom_osc7() {
        emulate -L zsh
        local p=$PWD out= c
        if [[ $p == *[^A-Za-z0-9/._~-]* ]]; then
            setopt no_multibyte
            for c in ${(s::)p}; do
                if [[ $c == [A-Za-z0-9/._~-] ]]; then
                    out+=$c
                else
                    builtin printf -v c '%%%02X' "'$c"
                    out+=$c
                fi
            done
            p=$out
        fi
        builtin printf '\e]7;file://%s%s\a' "${HOST-}" "$p"
    }

    # First in precmd_functions, so $? is the command's status. D only follows a command that
    # started (C), not an empty line.
    _termloom_precmd() {
        local s=$?
        # The state file first: whoever sees D finds it up to date.
        if [[ -n ${_termloom_cmd-} ]]; then
            _termloom_last=$s
        fi
        if [[ -n ${TERMLOOM_STATE_FILE-} ]]; then
            { builtin print -r -- "zsh idle $_termloom_last" >| "$TERMLOOM_STATE_FILE" } 2>/dev/null
        fi
        if [[ -n ${_termloom_cmd-} ]]; then
            _termloom_cmd=
            builtin printf '\e]133;D;%s\a' "$s"
        fi
        _termloom_osc7
        builtin printf '\e]133;A\a'
        return $s
    }

    # Last in precmd_functions: keeps B at the end of PS1 even when a theme rebuilds it.
    _termloom_precmd_end() {
        local s=$?
        [[ $PS1 == *$'\e]133;B\a%}' ]] || PS1=$PS1$'%{\e]133;B\a%}'
        return $s
    }

    # Last in preexec_functions: C comes right before the command's own output.
    _termloom_preexec() {
        _termloom_cmd=1
        if [[ -n ${TERMLOOM_STATE_FILE-} ]]; then
            { builtin print -r -- "zsh busy $_termloom_last" >| "$TERMLOOM_STATE_FILE" } 2>/dev/null
        fi
        builtin printf '\e]133;C\a'
    }

    typeset -ga precmd_functions preexec_functions
    precmd_functions=(_termloom_precmd ${precmd_functions:#_termloom_precmd*} _termloom_precmd_end)
    preexec_functions=(${preexec_functions:#_termloom_preexec} _termloom_preexec)
fi
