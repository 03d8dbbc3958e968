package samtemplate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Env gives intrinsic functions their values, as CloudFormation would at
// deploy time: parameters (defaults fill what Params leaves out), pseudo
// parameters, and the Ref and Fn::GetAtt values of resources.
type Env struct {
	Params map[string]string // parameter and pseudo-parameter values (AWS::Region, ...)
	Refs   map[string]string // resource logical id -> Ref value
	Attrs  map[string]string // "Resource.Attribute" -> Fn::GetAtt value
}

// noValue is what AWS::NoValue evaluates to: the key or item is dropped.
type noValue struct{}

// Eval resolves every intrinsic function in v: Ref, Fn::GetAtt, Fn::Sub,
// Fn::Select, Fn::Split, Fn::If (with the template's conditions) and the
// condition functions. A property set to AWS::NoValue disappears.
func (t Template) Eval(v any, e Env) (any, error) {
	out, err := t.eval(v, e)
	if _, ok := out.(noValue); ok {
		return nil, err
	}
	return out, err
}

// EvalString is Eval for a value that must come out a string.
func (t Template) EvalString(v any, e Env) (string, error) {
	out, err := t.Eval(v, e)
	if err != nil {
		return "", err
	}
	s, ok := out.(string)
	if !ok {
		return "", fmt.Errorf("%v evaluates to %T, not a string", v, out)
	}
	return s, nil
}

func (t Template) eval(v any, e Env) (any, error) {
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, item := range x {
			r, err := t.eval(item, e)
			if err != nil {
				return nil, err
			}
			if _, drop := r.(noValue); !drop {
				out = append(out, r)
			}
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") || k == "Condition" {
					return t.intrinsic(k, arg, e)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, item := range x {
			r, err := t.eval(item, e)
			if err != nil {
				return nil, err
			}
			if _, drop := r.(noValue); !drop {
				out[k] = r
			}
		}
		return out, nil
	}
	return v, nil
}

// arity is the number of arguments of the functions that take a fixed
// number.
var arity = map[string]int{"Fn::GetAtt": 2, "Fn::Split": 2, "Fn::Select": 2, "Fn::Equals": 2, "Fn::If": 3, "Fn::Not": 1}

func (t Template) intrinsic(fn string, arg any, e Env) (any, error) {
	args, _ := arg.([]any)
	if n := arity[fn]; n > 0 && len(args) != n {
		return nil, fmt.Errorf("%s %v: want %d arguments", fn, arg, n)
	}
	name, _ := arg.(string)
	switch fn {
	case "Ref":
		return t.ref(name, e)
	case "Condition":
		return t.Condition(name, e)
	case "Fn::Sub":
		return t.sub(arg, e)
	case "Fn::GetAtt":
		key := fmt.Sprintf("%v.%v", args[0], args[1])
		if v, ok := e.Attrs[key]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("Fn::GetAtt %s: no value in the environment", key)
	case "Fn::Split":
		s, err := t.eval(args[1], e)
		var out []any
		for _, p := range strings.Split(fmt.Sprint(s), fmt.Sprint(args[0])) {
			out = append(out, p)
		}
		return out, err
	case "Fn::Select":
		i, err := strconv.Atoi(fmt.Sprint(args[0]))
		if err != nil {
			return nil, fmt.Errorf("Fn::Select index %v", args[0])
		}
		list, err := t.eval(args[1], e)
		if err != nil {
			return nil, err
		}
		items, _ := list.([]any)
		if i < 0 || i >= len(items) {
			return nil, fmt.Errorf("Fn::Select index %d out of %d", i, len(items))
		}
		return items[i], nil
	case "Fn::If":
		cond, _ := args[0].(string)
		ok, err := t.Condition(cond, e)
		if err != nil {
			return nil, err
		}
		if ok {
			return t.eval(args[1], e)
		}
		return t.eval(args[2], e)
	case "Fn::Equals":
		a, err := t.eval(args[0], e)
		if err != nil {
			return nil, err
		}
		b, err := t.eval(args[1], e)
		return fmt.Sprint(a) == fmt.Sprint(b), err
	case "Fn::Not":
		r, err := t.condition(args[0], e)
		return !r, err
	case "Fn::And", "Fn::Or":
		and := fn == "Fn::And"
		for _, c := range args {
			if r, err := t.condition(c, e); err != nil || r != and {
				return r, err
			}
		}
		return and, nil
	}
	return nil, fmt.Errorf("%s: not supported by this evaluator", fn)
}

func (t Template) ref(name string, e Env) (any, error) {
	if name == "AWS::NoValue" {
		return noValue{}, nil
	}
	p, isParam := t.Parameters()[name]
	v, ok := e.Params[name]
	if def, hasDefault := p["Default"]; !ok && hasDefault {
		v, ok = fmt.Sprint(def), true
	}
	switch {
	case !ok && isParam:
		return nil, fmt.Errorf("!Ref %s: parameter without a value or default", name)
	case !ok:
		if v, ok := e.Refs[name]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("!Ref %s: no value in the environment", name)
	case p["Type"] == "Number":
		// CloudFormation hands a Number parameter to an integer property
		// as a number.
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n, nil
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f, nil
		}
	}
	return v, nil
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

func (t Template) sub(arg any, e Env) (any, error) {
	format, vars := "", map[string]any{}
	switch a := arg.(type) {
	case string:
		format = a
	case []any:
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Sub %v: want [string, variables]", arg)
		}
		format, _ = a[0].(string)
		vars, _ = a[1].(map[string]any)
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(format, func(m string) string {
		name := m[2 : len(m)-1]
		var v any
		var err error
		switch {
		case vars[name] != nil:
			v, err = t.eval(vars[name], e)
		case strings.Contains(name, "."):
			res, attr, _ := strings.Cut(name, ".")
			v, err = t.intrinsic("Fn::GetAtt", []any{res, attr}, e)
		default:
			v, err = t.ref(name, e)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return fmt.Sprint(v)
	})
	return strings.ReplaceAll(out, "${!", "${"), firstErr
}

// Condition evaluates the named condition of the template.
func (t Template) Condition(name string, e Env) (bool, error) {
	conds, _ := t["Conditions"].(map[string]any)
	c, ok := conds[name]
	if !ok {
		return false, fmt.Errorf("condition %q is not defined", name)
	}
	return t.condition(c, e)
}

// condition evaluates a condition function, which must come out true or
// false.
func (t Template) condition(v any, e Env) (bool, error) {
	r, err := t.eval(v, e)
	b, ok := r.(bool)
	if err == nil && !ok {
		err = fmt.Errorf("condition %v: not a condition function", v)
	}
	return b, err
}
