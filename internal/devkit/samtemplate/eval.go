package samtemplate

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Env gives intrinsic functions their values, as CloudFormation would at
// deploy time: parameters (defaults fill what Params leaves out), pseudo
// parameters, and the Ref and Fn::GetAtt values of resources.
type Env struct {
	Params map[string]string // parameter and pseudo-parameter values (AWS::Region, ...)
	Refs   map[string]string // logical id -> Ref value, where no parameter value or default gives one
	Attrs  map[string]string // "Resource.Attribute" -> Fn::GetAtt value
}

// Eval resolves every intrinsic function in v: Ref, Fn::GetAtt, Fn::Sub,
// Fn::Select, Fn::Split, Fn::If (with the template's conditions) and the
// condition functions. AWS::NoValue evaluates to nil, and a key or item
// whose value is nil is dropped, as CloudFormation drops one set to it.
func (t Template) Eval(v any, e Env) (any, error) {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			var err error
			if out[i], err = t.Eval(item, e); err != nil {
				return nil, err
			}
		}
		return slices.DeleteFunc(out, func(r any) bool { return r == nil }), nil
	case map[string]any:
		out := map[string]any{}
		for k, item := range x {
			if len(x) == 1 && (k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")) {
				return t.intrinsic(k, item, e)
			}
			var err error
			if out[k], err = t.Eval(item, e); err != nil {
				return nil, err
			}
		}
		maps.DeleteFunc(out, func(_ string, r any) bool { return r == nil })
		return out, nil
	}
	return v, nil
}

// EvalString is Eval for a value that must come out a string.
func (t Template) EvalString(v any, e Env) (string, error) { return evalAs[string](t, v, e) }

// evalAs is Eval for a value that must come out a T.
func evalAs[T any](t Template, v any, e Env) (T, error) {
	out, err := t.Eval(v, e)
	r, ok := out.(T)
	if err == nil && !ok {
		err = fmt.Errorf("%v evaluates to %T, not a %T", v, out, r)
	}
	return r, err
}

// arity is the number of arguments of the functions that take a fixed
// number.
var arity = map[string]int{"Fn::Sub": 2, "Fn::Split": 2, "Fn::Select": 2, "Fn::Equals": 2, "Fn::If": 3, "Fn::Not": 1}

// subVar is a ${Name} of Fn::Sub; ${!Name} stands for the text ${Name}.
var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

func (t Template) intrinsic(fn string, arg any, e Env) (any, error) {
	args, _ := arg.([]any)
	if fn == "Fn::If" && len(args) == 3 {
		// Only the branch the condition picks is evaluated.
		ok, err := t.condition(fmt.Sprint(args[0]), e)
		if err != nil {
			return nil, err
		}
		if ok {
			return t.Eval(args[1], e)
		}
		return t.Eval(args[2], e)
	}
	if format, ok := arg.(string); ok && fn == "Fn::Sub" {
		arg = []any{format, map[string]any{}} // the form without variables
	}
	v, err := t.Eval(arg, e)
	if err != nil {
		return nil, err
	}
	args, _ = v.([]any)
	if n := arity[fn]; n > 0 && len(args) != n {
		return nil, fmt.Errorf("%s %v: want %d arguments", fn, arg, n)
	}
	switch fn {
	case "Ref":
		return t.ref(fmt.Sprint(v), e)
	case "Condition":
		return t.condition(fmt.Sprint(v), e)
	case "Fn::GetAtt":
		key := strings.Join(strs(v), ".")
		if attr, ok := e.Attrs[key]; ok {
			return attr, nil
		}
		return nil, fmt.Errorf("Fn::GetAtt %s: no value in the environment", key)
	case "Fn::Sub":
		format, _ := args[0].(string)
		vars, _ := args[1].(map[string]any)
		var firstErr error
		out := subVar.ReplaceAllStringFunc(format, func(m string) string {
			name := m[2 : len(m)-1]
			v, ok := vars[name]
			if !ok {
				fn := "Ref"
				if strings.Contains(name, ".") {
					fn = "Fn::GetAtt"
				}
				var err error
				v, err = t.intrinsic(fn, name, e)
				firstErr = cmp.Or(firstErr, err)
			}
			return fmt.Sprint(v)
		})
		return strings.ReplaceAll(out, "${!", "${"), firstErr
	case "Fn::Split":
		var out []any
		for _, s := range strings.Split(fmt.Sprint(args[1]), fmt.Sprint(args[0])) {
			out = append(out, s)
		}
		return out, nil
	case "Fn::Select":
		i, err := strconv.Atoi(fmt.Sprint(args[0]))
		items, _ := args[1].([]any)
		if err != nil || i < 0 || i >= len(items) {
			return nil, fmt.Errorf("Fn::Select %v: no such item", args)
		}
		return items[i], nil
	case "Fn::Equals":
		return fmt.Sprint(args[0]) == fmt.Sprint(args[1]), nil
	case "Fn::Not", "Fn::And":
		for _, a := range args {
			if _, ok := a.(bool); !ok {
				return nil, fmt.Errorf("%s %v: %v is not a condition", fn, arg, a)
			}
		}
		// Not holds when its one argument is false, And when none is.
		return slices.Contains(args, false) == (fn == "Fn::Not"), nil
	}
	return nil, fmt.Errorf("%s: not supported by this evaluator", fn)
}

func (t Template) ref(name string, e Env) (any, error) {
	if name == "AWS::NoValue" {
		return nil, nil
	}
	p := t.Parameters()[name]
	v, ok := e.Params[name]
	if def, hasDefault := p["Default"]; !ok && hasDefault {
		v, ok = fmt.Sprint(def), true
	}
	if !ok {
		v, ok = e.Refs[name]
	}
	if !ok {
		return nil, fmt.Errorf("!Ref %s: no value in the environment, nor a default", name)
	}
	// CloudFormation hands a Number parameter to an integer property as a
	// number.
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && p["Type"] == "Number" {
		return n, nil
	}
	return v, nil
}

// condition evaluates the named condition of the template.
func (t Template) condition(name string, e Env) (bool, error) {
	c := at(map[string]any(t), "Conditions", name)
	if c == nil {
		return false, fmt.Errorf("condition %q is not defined", name)
	}
	return evalAs[bool](t, c, e)
}
