# termloom shell integration for bash: OSC 133 marks (A prompt start, B prompt end, C command
# start, D;<exit> command end) and OSC 7 (working directory), plus a one-line state file for
# `termloom status` when $TERMLOOM_STATE_FILE is set. Written by termloom; it holds no user data.
# Sourcing it again is harmless: it replaces its own hooks and leaves everyone else's alone.

# 1. Startup files, only when termloom started this shell (bash --rcfile THIS, or --norc).
if [ -n "${TERMLOOM_BASH_STARTUP-}" ]; then
    _termloom_startup=$TERMLOOM_BASH_STARTUP
    unset TERMLOOM_BASH_STARTUP
    case $_termloom_startup in
    login)
        # What a login bash reads (tmux starts shells as login shells by default).
        if [ -r /etc/profile ]; then . /etc/profile; fi
        if [ -r ~/.bash_profile ]; then . ~/.bash_profile
        elif [ -r ~/.bash_login ]; then . ~/.bash_login
        elif [ -r ~/.profile ]; then . ~/.profile
        fi
        ;;
    rc)
        # What an interactive bash reads. A bash built with a system-wide bashrc (Debian's
        # /etc/bash.bashrc) has read it already, even with --rcfile: it is not read twice.
        if [ -n "${TERMLOOM_BASH_RCFILE-}" ]; then
            if [ -r "$TERMLOOM_BASH_RCFILE" ]; then . "$TERMLOOM_BASH_RCFILE"; fi
        elif [ -r ~/.bashrc ]; then
            . ~/.bashrc
        fi
        ;;
    norc)
        # bash --norc: this file was loaded from PROMPT_COMMAND before the first prompt.
        unset PROMPT_COMMAND
        ;;
    esac
    unset TERMLOOM_BASH_RCFILE
fi

# 2. Hooks, in interactive shells only.
if [[ $- == *i* ]]; then
    # The state file is this shell's only: not passed on to what it runs, nor to a shell that
    # replaces it (`exec bash`), which would not keep the file up to date (nor answer the line
    # query below).
    if [ -n "${TERMLOOM_STATE_FILE-}" ]; then export -n TERMLOOM_STATE_FILE; fi
    _termloom_last=${_termloom_last--}

    _termloom_osc7() {
        local p=$PWD
        case $p in
        *[!A-Za-z0-9/._~-]*)
            local LC_ALL=C out= c i
            for ((i = 0; i < ${#p}; i++)); do
                c=${p:i:1}
                case $c in
                [A-Za-z0-9/._~-]) out+=$c ;;
                *)
                    printf -v c '%%%02X' "'$c"
                    out+=$c
                    ;;
                esac
            done
            p=$out
            ;;
        esac
        printf '\e]7;file://%s%s\a' "${HOSTNAME-}" "$p"
    }

    # D (with the exit code) and A come from _termloom_prompt, first in PROMPT_COMMAND, where $? is
    # the command's status. PS1 (with promptvars, bash's default) holds a fallback: when
    # _termloom_prompt did not run (PROMPT_COMMAND replaced) or did not run first (something put
    # before it, so its $? is another's), PS1 prints D with the $? bash restores for it, and A.
    # D only follows a command that started (C, from PS0, sets _termloom_cmd), not an empty line.
    _termloom_cmd=${_termloom_cmd:-0}
    _termloom_D=('' 1)
    _termloom_ps1_start='\[${_termloom_D[_termloom_cmd]:+\e]133;D;$?\a\e]133;A\a}${_termloom_D[_termloom_cmd=0]:0:0}\]'

    # The hooks give back the command's status for what runs after them, except under
    # `set -e`, where a hook that fails would end the shell.
    _termloom_return() {
        case $- in
        *e*) return 0 ;;
        esac
        return "$1"
    }

    _termloom_prompt() {
        local _termloom_s=$? _termloom_first=
        _termloom_in_prompt=1
        _termloom_cont=0
        case ${PROMPT_COMMAND[0]-} in
        _termloom_prompt | _termloom_prompt$'\n'*) _termloom_first=1 ;;
        esac
        if ! shopt -q promptvars; then
            _termloom_first=1
        fi
        if ((_termloom_cmd)); then
            # termloom's P: the command's output ends here; what prompt hooks print is theirs.
            printf '\e]6973;P\a'
            if [ -n "$_termloom_first" ]; then
                _termloom_last=$_termloom_s
            fi
        fi
        # The state file first: whoever sees D finds it up to date. `L`: the line query below
        # is bound (readline on).
        if [ -n "${TERMLOOM_STATE_FILE-}" ]; then
            local _termloom_l=
            if [[ -o emacs || -o vi ]]; then _termloom_l=' L'; fi
            { printf 'bash idle %s%s\n' "$_termloom_last" "$_termloom_l" >|"$TERMLOOM_STATE_FILE"; } 2>/dev/null
        fi
        if ((_termloom_cmd)) && [ -n "$_termloom_first" ]; then
            printf '\e]133;D;%s\a' "$_termloom_s"
            _termloom_cmd=0
            printf '\e]133;A\a'
        elif ! ((_termloom_cmd)); then
            printf '\e]133;A\a'
        fi
        _termloom_osc7
        _termloom_return "$_termloom_s"
    }

    # Last in PROMPT_COMMAND: keeps the fallback at the start of PS1, B at its end and C in PS0,
    # even when a prompt theme rebuilds PS1 or PS0 was replaced.
    _termloom_prompt_end() {
        local _termloom_s=$?
        if shopt -q promptvars; then
            case $PS1 in
            "$_termloom_ps1_start"*) ;;
            *) PS1=$_termloom_ps1_start$PS1 ;;
            esac
            case ${PS0-} in
            *'133;C'*) ;;
            *) PS0=${PS0-}'${_termloom_c[_termloom_cmd=1]-}'$'\e]133;C\a' ;;
            esac
        fi
        case $PS1 in
        *'\[\e]133;B\a\]') ;;
        *) PS1=$PS1'\[\e]133;B\a\]' ;;
        esac
        # termloom's 2 before the continuation prompt: the line typed is not complete (an open
        # quote or bracket), and the shell asks for more. `_termloom_cont` says so to the line
        # query until the next prompt.
        if shopt -q promptvars; then
            case ${PS2-} in
            *'6973;2'*) ;;
            *) PS2='\[\e]6973;2\a${_termloom_c[_termloom_cont=1]-}\]'${PS2-'> '} ;;
            esac
        fi
        _termloom_in_prompt=
        _termloom_return "$_termloom_s"
    }

    # termloom's L, the line query: before a run is typed, termloom sends this key sequence,
    # bound in every keymap to a function that changes nothing and tells what the line editor
    # holds: the length of the line, and `c` in vi command mode (where typed text would be taken
    # as commands). Typed text left on the line would run with termloom's command.
    _termloom_line() {
        # Blanks do not count: typed before a command, they change nothing.
        local _termloom_text=${READLINE_LINE//[[:space:]]/}
        printf '\e]6973;L;%s;%s;%s\a' "${#_termloom_text}" "${1-i}" "${_termloom_cont:-0}"
    }
    bind -m emacs -x '"\e[6973~": _termloom_line' 2>/dev/null
    bind -m vi-insert -x '"\e[6973~": _termloom_line' 2>/dev/null
    bind -m vi-command -x '"\e[6973~": _termloom_line c' 2>/dev/null

    if ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) &&
        [[ ${PROMPT_COMMAND@a} == *a* ]]; then
        # PROMPT_COMMAND is an array (bash 5.1+): ours go first and last, the rest stay in order.
        _termloom_pc=()
        for _termloom_e in "${PROMPT_COMMAND[@]}"; do
            case $_termloom_e in
            _termloom_prompt | _termloom_prompt_end) ;;
            *) _termloom_pc+=("$_termloom_e") ;;
            esac
        done
        PROMPT_COMMAND=(_termloom_prompt "${_termloom_pc[@]}" _termloom_prompt_end)
        unset _termloom_pc _termloom_e
    else
        _termloom_pc=${PROMPT_COMMAND-}
        _termloom_pc=${_termloom_pc#_termloom_prompt$'\n'}
        _termloom_pc=${_termloom_pc%_termloom_prompt_end}
        _termloom_pc=${_termloom_pc%$'\n'}
        PROMPT_COMMAND=_termloom_prompt$'\n'${_termloom_pc:+$_termloom_pc$'\n'}_termloom_prompt_end
        unset _termloom_pc
    fi

    if ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))); then
        # C from PS0, printed after the command line is read and before it runs. The empty
        # array lookup only records that a command started (it prints nothing).
        case ${PS0-} in
        *'133;C'*) ;;
        *)
            if shopt -q promptvars; then
                PS0=${PS0-}'${_termloom_c[_termloom_cmd=1]-}'$'\e]133;C\a'
            else
                PS0=${PS0-}$'\e]133;C\a'
                _termloom_cmd=1
            fi
            ;;
        esac
    else
        # bash < 4.4 has no PS0: a DEBUG trap prints C before the first command of a line,
        # unless another DEBUG trap is set already (then commands get no C mark).
        _termloom_preexec() {
            if [ -n "${_termloom_in_prompt-}" ] || ((_termloom_cmd)) || [ -n "${COMP_LINE-}" ]; then
                return
            fi
            case $BASH_COMMAND in _termloom_prompt*) return ;; esac
            _termloom_cmd=1
            printf '\e]133;C\a'
        }
        if [ -z "$(trap -p DEBUG)" ]; then trap '_termloom_preexec' DEBUG; fi
    fi

    if [ "${_termloom_startup-}" = norc ]; then
        # Loaded from PROMPT_COMMAND: this prompt still gets its marks.
        _termloom_prompt
        _termloom_prompt_end
    fi
fi
unset _termloom_startup
